package systemd

import (
	"fmt"
	"strings"

	"github.com/cutoverhq/cutover/service"
)

// credentialsDir is where systemd puts the service's credentials, and
// where the pod gets them: the app finds them through
// $CREDENTIALS_DIRECTORY, as on the VM.
func (cv *conv) credentialsDir() string { return "/run/credentials/" + cv.u.Name }

// credentials maps LoadCredential= and friends (systemd.exec(5)
// "Credentials"): each credential becomes a key of the service's Secret,
// mounted as a file under $CREDENTIALS_DIRECTORY. cutover never reads a
// credential file, nor copies a SetCredential= value.
func (cv *conv) credentials() {
	dir := cv.credentialsDir()
	any := false
	mount := func(id string) (string, string) {
		name := service.SanitizeName(strings.ReplaceAll(id, "_", "-"))
		vol := cv.volume(service.Volume{Name: "credentials", Kind: service.VolumeSecret})
		for i := range cv.svc.Volumes {
			if cv.svc.Volumes[i].Name == vol && !contains(cv.svc.Volumes[i].Secrets, name) {
				cv.svc.Volumes[i].Secrets = append(cv.svc.Volumes[i].Secrets, name)
			}
		}
		target := dir + "/" + id
		cv.c.VolumeMounts = append(cv.c.VolumeMounts, service.VolumeMount{Name: vol, MountPath: target, SubPath: name, ReadOnly: true})
		any = true
		return name, target
	}
	for _, key := range []string{"LoadCredential", "LoadCredentialEncrypted"} {
		for _, e := range cv.list("Service", key) {
			id, path, _ := strings.Cut(cv.expand(e, e.Value), ":")
			id = strings.TrimSpace(id)
			if id == "" || strings.Contains(id, "/") {
				cv.warn(e, "", "no credential name: set it by hand")
				continue
			}
			if path == "" {
				// A bare name is looked up in the host's credential
				// stores (/etc/credstore, /run/credstore…).
				path = "/etc/credstore/" + id
			}
			name, target := mount(id)
			cv.addSecret(service.Secret{Name: name, Source: service.SecretFile, Key: path})
			msg := fmt.Sprintf("a credential file of the VM (%s): cutover did not read it; store its content in AWS Secrets Manager and point the ExternalSecret at it, or create the Kubernetes Secret from the file", path)
			if key == "LoadCredentialEncrypted" {
				msg += "; it is encrypted for the VM's TPM or host key: decrypt it there (systemd-creds decrypt) first"
			}
			cv.warn(e, "Secret key "+name+" mounted at "+target, msg)
		}
	}
	for _, key := range []string{"SetCredential", "SetCredentialEncrypted"} {
		for _, e := range cv.list("Service", key) {
			id, _, _ := strings.Cut(e.Value, ":")
			id = strings.TrimSpace(id)
			if id == "" || strings.Contains(id, "/") {
				cv.warn(e, "", "no credential name: set it by hand")
				continue
			}
			if cv.has("Service", "LoadCredential", id) || cv.has("Service", "LoadCredentialEncrypted", id) {
				// systemd uses SetCredential= only when loading failed.
				cv.warn(e, "", "a fallback for the credential "+id+", which LoadCredential= loads: its value was not copied")
				continue
			}
			name, target := mount(id)
			cv.addSecret(service.Secret{Name: name, Source: service.SecretsManager, Key: cv.secretKey(), Property: name})
			cv.warn(e, "Secret key "+name+" mounted at "+target, fmt.Sprintf("the credential's value is written in the unit: it was not copied; store it in AWS Secrets Manager secret %s, property %s (the ExternalSecret reads it from there)", cv.secretKey(), name))
		}
	}
	for _, e := range cv.list("Service", "ImportCredential") {
		cv.warn(e, "", "credentials "+e.Value+" came from the host's credential store: add each one the service reads as a key of its Secret, mounted under "+dir)
	}
	if any {
		cv.config("CREDENTIALS_DIRECTORY", dir)
		cv.setEnv("CREDENTIALS_DIRECTORY", service.EnvVar{Name: "CREDENTIALS_DIRECTORY", ConfigKey: "CREDENTIALS_DIRECTORY"})
	}
}

// has reports whether section.key has an assignment whose value starts
// with id: (or is id).
func (cv *conv) has(section, key, id string) bool {
	for _, e := range cv.all(section, key) {
		if k, _, _ := strings.Cut(e.Value, ":"); strings.TrimSpace(k) == id {
			return true
		}
	}
	return false
}

func (cv *conv) addSecret(s service.Secret) {
	for _, have := range cv.svc.Secrets {
		if have.Name == s.Name {
			return
		}
	}
	cv.svc.Secrets = append(cv.svc.Secrets, s)
}

// directoryVars are the variables systemd sets from a service's
// directory settings (systemd.exec(5) "Environment Variables in Spawned
// Processes"): a command line may use them without any Environment=.
var directoryVars = map[string]struct{ key, base string }{
	"STATE_DIRECTORY":         {"StateDirectory", "/var/lib/"},
	"CACHE_DIRECTORY":         {"CacheDirectory", "/var/cache/"},
	"LOGS_DIRECTORY":          {"LogsDirectory", "/var/log/"},
	"RUNTIME_DIRECTORY":       {"RuntimeDirectory", "/run/"},
	"CONFIGURATION_DIRECTORY": {"ConfigurationDirectory", "/etc/"},
}

// systemdVar returns the value systemd gives variable name in the
// service's processes, and the setting it comes from, when the unit
// makes systemd set it.
func (cv *conv) systemdVar(name string) (value, from string, ok bool) {
	if d, known := directoryVars[name]; known {
		var paths []string
		for _, e := range cv.all("Service", d.key) {
			if e.Value == "" {
				paths = nil
				continue
			}
			for _, w := range strings.Fields(e.Value) {
				w, _, _ = strings.Cut(w, ":")
				paths = append(paths, d.base+strings.Trim(w, "/"))
			}
		}
		if len(paths) > 0 {
			return strings.Join(paths, ":"), d.key + "=", true
		}
		return "", "", false
	}
	switch name {
	case "CREDENTIALS_DIRECTORY":
		for _, key := range []string{"LoadCredential", "LoadCredentialEncrypted", "SetCredential", "SetCredentialEncrypted"} {
			if len(cv.all("Service", key)) > 0 {
				return cv.credentialsDir(), key + "=", true
			}
		}
	case "USER", "LOGNAME":
		if e := cv.last("Service", "User"); e != nil && e.Value != "" && !isNumeric(e.Value) && !strings.Contains(e.Value, "%") {
			return e.Value, "User=", true
		}
	}
	return "", "", false
}
