package compose

import (
	"fmt"
	"os"
	"path"
	"regexp"
	"sort"
	"strings"

	"github.com/compose-spec/compose-go/v2/format"
	"github.com/compose-spec/compose-go/v2/types"
	"gopkg.in/yaml.v3"

	"github.com/cutoverhq/cutover/service"
	"github.com/cutoverhq/cutover/source"
)

// maxConfigFile bounds a bind-mounted file turned into a ConfigMap key:
// a ConfigMap holds at most 1 MiB in all.
const maxConfigFile = 512 << 10

var secretFileRe = regexp.MustCompile(`(?i)(\.pem$|\.key$|\.p12$|\.pfx$|\.jks$|\.keystore$|id_rsa|id_ed25519|id_ecdsa|secret|passw|credential|token|\.htpasswd$|\.env$|\.netrc$|\.pgpass$)`)

// fileExtRe is a file name's extension (nginx.conf, prometheus.yml), not
// a directory's conf.d.
var fileExtRe = regexp.MustCompile(`^[^.].*\.([A-Za-z][A-Za-z0-9]{1,5})$`)

// looksLikeFile reports whether a host path that does not exist names a
// file rather than a directory, by its extension.
func looksLikeFile(p string) bool {
	return fileExtRe.MatchString(baseName(p))
}

// storage maps volumes, tmpfs, secrets, configs and shm_size.
func (cv *conv) storage(t *ftrack, c *service.Container, cref string, sc types.ServiceConfig) {
	cv.volumes(t, c, cref, sc)
	for i, tm := range sc.Tmpfs {
		field := "tmpfs"
		if t.Has(fmt.Sprintf("tmpfs[%d]", i)) {
			field = fmt.Sprintf("tmpfs[%d]", i)
		}
		target, opts, _ := strings.Cut(tm, ":")
		size := ""
		for _, o := range strings.Split(opts, ",") {
			if v, ok := strings.CutPrefix(o, "size="); ok {
				size = dockerSize(v)
			}
		}
		name := cv.volume(service.Volume{Name: "tmpfs" + volSuffix(target), Kind: service.VolumeEmptyDir, Medium: "Memory", Size: size})
		c.VolumeMounts = append(c.VolumeMounts, service.VolumeMount{Name: name, MountPath: target})
		t.Mapped(field, fmt.Sprintf("emptyDir %s (medium Memory) at %s", name, target))
	}
	if sc.ShmSize > 0 {
		name := cv.volume(service.Volume{Name: "dshm", Kind: service.VolumeEmptyDir, Medium: "Memory", Size: memQuantity(int64(sc.ShmSize))})
		c.VolumeMounts = append(c.VolumeMounts, service.VolumeMount{Name: name, MountPath: "/dev/shm"})
		t.Mapped("shm_size", "emptyDir "+name+" (medium Memory, sizeLimit "+memQuantity(int64(sc.ShmSize))+") at /dev/shm")
	}
	cv.secrets(t, c, cref, sc)
	cv.configs(t, c, cref, sc)
	if len(sc.VolumesFrom) > 0 {
		t.Warn("volumes_from", "", "pods cannot mount another workload's volumes: run the containers in one pod (a sidecar) or share a ReadWriteMany volume (EFS)")
	}
}

// volume adds a pod volume once and returns its name.
func (cv *conv) volume(v service.Volume) string {
	v.Name = service.SanitizeName(v.Name)
	for _, have := range cv.svc.Volumes {
		if have.Name == v.Name {
			return v.Name
		}
	}
	cv.svc.Volumes = append(cv.svc.Volumes, v)
	return v.Name
}

func volSuffix(target string) string {
	s := service.SanitizeName(target)
	if s == "service" {
		return ""
	}
	return "-" + s
}

// rawTargets returns the raw volumes entries keyed by their target, and
// the entries a later one for the same target replaced: compose-go keeps
// one mount per target, the last.
func rawTargets(t *ftrack, field string) (map[string]item, []replaced) {
	out := map[string]item{}
	var gone []replaced
	for _, it := range t.items(field) {
		target := ""
		switch it.val.Kind {
		case yaml.ScalarNode:
			if v, err := format.ParseVolume(t.pr.interpolatedKeep(it.val.Value)); err == nil {
				target = v.Target
			}
		case yaml.MappingNode:
			for _, kv := range source.MapEntries(it.val) {
				if kv[0].Value == "target" {
					target = t.pr.interpolated(kv[1].Value)
				}
			}
		}
		if target != "" {
			if prev, ok := out[path.Clean(target)]; ok {
				gone = append(gone, replaced{item: prev, by: it, target: target})
			}
			out[path.Clean(target)] = it
		}
	}
	return out, gone
}

// replaced is a mount entry a later one for the same target replaced.
type replaced struct {
	item
	by     item
	target string
}

func (cv *conv) volumes(t *ftrack, c *service.Container, cref string, sc types.ServiceConfig) {
	raws, gone := rawTargets(t, "volumes")
	for _, g := range gone {
		if g.file == g.by.file {
			// prometheus-grafana: "./etc/prometheus:/prometheus" then
			// "prom_data:/prometheus"; the first vanished unreported.
			t.in(g.file).Drop(g.path, fmt.Sprintf("%s mounts at %s too: one target takes one mount, and the later entry is the one converted", g.by.path, g.target))
			continue
		}
		t.in(g.file).Mapped(g.path, fmt.Sprintf("replaced by %s of %s, which mounts at %s too", g.by.path, cv.pr.displayPath(cv.pr.files[g.by.file].Path), g.target))
	}
	for _, v := range sc.Volumes {
		it, ok := raws[path.Clean(v.Target)]
		tr, field := t.in(t.pick("volumes")), "volumes"
		if ok {
			tr, field = t.in(it.file), it.path
		}
		mount := service.VolumeMount{MountPath: v.Target, ReadOnly: v.ReadOnly}
		switch v.Type {
		case types.VolumeTypeVolume:
			if v.Volume != nil && v.Volume.Subpath != "" {
				mount.SubPath = v.Volume.Subpath
			}
			if v.Source == "" {
				mount.Name = cv.volume(service.Volume{Name: "anon" + volSuffix(v.Target), Kind: service.VolumeEmptyDir})
				tr.Warn(field, "emptyDir "+mount.Name, "anonymous volume: its data lives as long as the pod; use a named volume to keep it")
				break
			}
			top := cv.pr.p.Volumes[v.Source]
			cv.finish["volumes."+v.Source] = true
			tt := cv.root.At("volumes." + v.Source)
			mount.Name = cv.volume(service.Volume{Name: v.Source, Kind: service.VolumeClaim})
			var notes []string
			if users := cv.pr.volumeUsers(v.Source); len(users) > 1 {
				notes = append(notes, fmt.Sprintf("shared by %s: a PVC is ReadWriteOnce on EBS, so one node at a time; share it through EFS (ReadWriteMany) or give it one owner", strings.Join(sanitizeAll(users), ", ")))
			}
			notes = append(notes, "Docker fills a new named volume with the image's files at "+v.Target+"; Kubernetes does not")
			if cv.svc.Rollout == nil {
				// A ReadWriteOnce claim cannot be attached to a surge pod on
				// another node: replace pods instead of surging.
				cv.svc.Rollout = &service.Rollout{MaxSurgePercent: 0, MaxUnavailablePercent: 100}
				notes = append(notes, "rollouts replace the pod (maxSurge 0) so the claim can move")
			}
			tr.Warn(field, "PersistentVolumeClaim "+mount.Name, strings.Join(notes, "; "))
			if top.External {
				tt.Warn("external", "PersistentVolumeClaim "+mount.Name, "external volume: its data is on the compose host; copy it into the new volume before the cut-over")
			}
			switch {
			case top.Driver != "" && top.Driver != "local":
				tt.Warn("driver", "", "volume driver "+top.Driver+": the claim uses the cluster's default StorageClass; pick one in values")
			case tt.Has("driver"):
				tt.Mapped("driver", "PersistentVolumeClaim (default StorageClass)")
			}
			if typ := top.DriverOpts["type"]; typ == "nfs" || typ == "nfs4" {
				tt.Warn("driver_opts", "PersistentVolumeClaim "+mount.Name, "an NFS export ("+top.DriverOpts["device"]+"): keep it shared through Amazon EFS (ReadWriteMany) or an NFS PersistentVolume, and copy the data")
			} else if len(top.DriverOpts) > 0 {
				tt.Drop("driver_opts", "driver options of the local volume driver have no counterpart: the StorageClass decides")
			}
			if tt.Has("name") {
				tt.Mapped("name", "PersistentVolumeClaim "+mount.Name)
			}
			if len(top.Labels) > 0 {
				tt.Drop("labels", "volume labels are not carried over")
			}
			if v.Volume != nil && v.Volume.NoCopy {
				t.Use(field + ".volume.nocopy")
			}
		case types.VolumeTypeBind:
			mount.Name = cv.bind(tr, field, c, v, &mount)
			if mount.Name == "" {
				continue
			}
		case types.VolumeTypeTmpfs:
			size := ""
			if v.Tmpfs != nil && v.Tmpfs.Size > 0 {
				size = memQuantity(int64(v.Tmpfs.Size))
			}
			mount.Name = cv.volume(service.Volume{Name: "tmpfs" + volSuffix(v.Target), Kind: service.VolumeEmptyDir, Medium: "Memory", Size: size})
			tr.Mapped(field, "emptyDir "+mount.Name+" (medium Memory)")
		default:
			tr.Drop(field, "volume type "+v.Type+" has no Kubernetes counterpart")
			continue
		}
		c.VolumeMounts = append(c.VolumeMounts, mount)
	}
	t.Use("volumes")
}

// volumeUsers returns the enabled services that mount a named volume.
func (pr *project) volumeUsers(name string) []string {
	var out []string
	for n, s := range pr.p.Services {
		for _, v := range s.Volumes {
			if v.Type == types.VolumeTypeVolume && v.Source == name {
				out = append(out, n)
				break
			}
		}
	}
	sort.Strings(out)
	return out
}

// bind maps a bind mount: a small file of the project becomes a ConfigMap
// key (a secret-looking one a Secret reference, unread); anything else is
// an emptyDir, since the host path does not exist on a node. It returns
// the volume name, or "" when nothing is mounted.
func (cv *conv) bind(tr reporter, field string, c *service.Container, v types.ServiceVolumeConfig, mount *service.VolumeMount) string {
	src := v.Source
	switch {
	case src == "/var/run/docker.sock" || src == "/run/docker.sock":
		tr.Drop(field, "the Docker socket does not exist on Kubernetes nodes (containerd): a container that drives Docker needs another design")
		return ""
	case hasSentinel(src):
		// The host path came from a variable that is not set: the
		// mount stays, backed as a host path would be.
		vars := varList(sentinelVars(src))
		what := restoreVars(strings.TrimPrefix(src, "/"))
		if cv.holdsData(v) {
			name := cv.volume(service.Volume{Name: "data" + volSuffix(v.Target), Kind: service.VolumeClaim})
			tr.Warn(field, "PersistentVolumeClaim "+name+" at "+v.Target, fmt.Sprintf("the host directory %s (%s is not set) holds this service's data: it became a volume claim; copy the data into it before the cut-over", what, vars))
			return name
		}
		name := cv.volume(service.Volume{Name: "bind" + volSuffix(v.Target), Kind: service.VolumeEmptyDir})
		tr.Warn(field, "emptyDir "+name+" at "+v.Target, fmt.Sprintf("the host path %s (%s is not set) lives on the compose host: the container gets an empty directory; if it holds data to keep, make it a volume claim in values", what, vars))
		return name
	}
	display := cv.pr.displayPath(src)
	st, exists := fileExists(src)
	if exists && !st.IsDir() && cv.pr.inProject(src) {
		key := configKey(baseName(src))
		if secretFileRe.MatchString(baseName(src)) {
			name := cv.fileSecret(key, display)
			mount.SubPath = name
			mount.ReadOnly = true
			vol := cv.volume(service.Volume{Name: "secrets", Kind: service.VolumeSecret})
			cv.addSecretToVolume(vol, name)
			tr.Warn(field, "Secret key "+name+" at "+v.Target, fmt.Sprintf("%s looks like a secret: not read; store it in AWS Secrets Manager (%s/%s, property %s) or create the Secret from the file", display, cv.pr.name, cv.svc.Name, name))
			return vol
		}
		if st.Size() <= maxConfigFile {
			data, err := os.ReadFile(src)
			if err == nil {
				key = cv.configFileKey(key, string(data))
				mount.SubPath = key
				mount.ReadOnly = true
				vol := cv.volume(service.Volume{Name: "config-files", Kind: service.VolumeConfig})
				tr.Warn(field, "ConfigMap key "+key+" at "+v.Target, "the host file "+display+" became a ConfigMap key, mounted read-only; edits need a new rollout")
				return vol
			}
		}
	}
	if (exists && !st.IsDir()) || (!exists && looksLikeFile(src)) {
		// An emptyDir at a file's path (./proxy/nginx.conf at
		// /etc/nginx/conf.d/default.conf) would replace the image's
		// file with a directory: nothing is mounted.
		kind := "ConfigMap"
		if secretFileRe.MatchString(baseName(src)) {
			kind = "Secret"
		}
		why := "does not exist"
		switch {
		case !cv.pr.inProject(src):
			why = "is outside the project (on the compose host), so it was not read"
		case exists && st.Size() > maxConfigFile:
			why = fmt.Sprintf("is too large for a ConfigMap (%d bytes)", st.Size())
		case exists:
			why = "could not be read"
		}
		tr.Warn(field, "", fmt.Sprintf("the host file %s %s: nothing is mounted at %s, where an empty directory would replace the image's file; give the container the file from a %s (mounted with subPath %s), or put it beside the compose file and convert again", display, why, v.Target, kind, baseName(v.Target)))
		return ""
	}
	if cv.holdsData(v) && (!exists || st.IsDir()) {
		// A database's data directory: an emptyDir would lose the data
		// at every restart.
		name := cv.volume(service.Volume{Name: "data" + volSuffix(v.Target), Kind: service.VolumeClaim})
		tr.Warn(field, "PersistentVolumeClaim "+name+" at "+v.Target, "the host directory "+display+" holds this service's data: it became a volume claim; copy the data into it before the cut-over")
		return name
	}
	name := cv.volume(service.Volume{Name: "bind" + volSuffix(v.Target), Kind: service.VolumeEmptyDir})
	why := "the host path " + display + " does not exist on Kubernetes nodes"
	switch {
	case !exists && cv.pr.inProject(src):
		// airflow's ./dags: beside the compose file, just not there.
		why = "the host path " + display + " does not exist"
	case !exists:
		why = "the host path " + display + " is not beside the compose file (it lives on the compose host)"
	case st.IsDir():
		why = "the host directory " + display + " does not exist on Kubernetes nodes"
	}
	if initDirs[path.Clean(v.Target)] {
		tr.Warn(field, "emptyDir "+name+" at "+v.Target, why+": these are the database's init scripts, which run only on an empty data directory; the container gets an empty directory, so give it the scripts from a ConfigMap mounted at "+v.Target+" or bake them into the image")
		return name
	}
	tr.Warn(field, "emptyDir "+name+" at "+v.Target, why+": the container gets an empty directory; bake the content into the image, or use a volume")
	return name
}

// dataDirs are where well-known database images keep their data, so a
// mount there holds data whichever image (a vendor's postgres build) it is.
var dataDirs = map[string]bool{
	"/var/lib/postgresql/data": true, "/var/lib/postgresql": true, "/bitnami/postgresql": true,
	"/var/lib/mysql": true, "/bitnami/mysql": true, "/bitnami/mariadb": true,
	"/data/db": true, "/bitnami/mongodb": true, "/var/lib/clickhouse": true,
	"/usr/share/elasticsearch/data": true, "/usr/share/opensearch/data": true,
	"/var/lib/rabbitmq": true,
}

// initDirs are where database images look for scripts to run on an empty
// data directory: configuration, not data.
var initDirs = map[string]bool{
	"/docker-entrypoint-initdb.d": true, "/docker-entrypoint-init.d": true,
	"/always-initdb.d": true, "/docker-entrypoint-startdb.d": true,
}

// holdsData reports whether a writable mount holds a database's data: an
// emptyDir there would lose it at every restart.
func (cv *conv) holdsData(v types.ServiceVolumeConfig) bool {
	target := path.Clean(v.Target)
	if v.ReadOnly || initDirs[target] || target == "/etc" || strings.HasPrefix(target, "/etc/") {
		return false
	}
	_, isStateful := stateful[imageRepo(cv.svcImage)]
	return isStateful || dataDirs[path.Clean(v.Target)]
}

var configKeyRe = regexp.MustCompile(`[^-._a-zA-Z0-9]+`)

// configKey makes a file name a valid ConfigMap/Secret key.
func configKey(s string) string {
	k := configKeyRe.ReplaceAllString(s, "-")
	if k == "" || k == "." || k == ".." {
		k = "file"
	}
	return k
}

// configFileKey adds a file to the ConfigMap under key, or key-2, … when
// key holds something else.
func (cv *conv) configFileKey(key, content string) string {
	k := key
	for i := 2; ; i++ {
		have, taken := cv.svc.Config[k]
		if !taken || have == content {
			break
		}
		k = fmt.Sprintf("%s-%d", key, i)
	}
	cv.config(k, content)
	return k
}

// fileSecret declares a secret whose value is a file cutover does not read.
func (cv *conv) fileSecret(name, file string) string {
	for _, s := range cv.svc.Secrets {
		if s.Name == name {
			return name
		}
	}
	cv.svc.Secrets = append(cv.svc.Secrets, service.Secret{Name: name, Source: service.SecretFile, Key: file})
	return name
}

func (cv *conv) addSecretToVolume(vol, secret string) {
	for i := range cv.svc.Volumes {
		if cv.svc.Volumes[i].Name != vol {
			continue
		}
		for _, s := range cv.svc.Volumes[i].Secrets {
			if s == secret {
				return
			}
		}
		cv.svc.Volumes[i].Secrets = append(cv.svc.Volumes[i].Secrets, secret)
	}
}

// secrets maps the service's secrets: files under /run/secrets.
func (cv *conv) secrets(t *ftrack, c *service.Container, cref string, sc types.ServiceConfig) {
	raws := map[string]item{}
	for _, it := range t.items("secrets") {
		src := it.val.Value
		if it.val.Kind == yaml.MappingNode {
			for _, kv := range source.MapEntries(it.val) {
				if kv[0].Value == "source" {
					src = kv[1].Value
				}
			}
		}
		raws[src] = it
	}
	for _, ref := range sc.Secrets {
		it, ok := raws[ref.Source]
		tr, field := t.in(t.pick("secrets")), "secrets"
		if ok {
			tr, field = t.in(it.file), it.path
		}
		top := cv.pr.p.Secrets[ref.Source]
		cv.finish["secrets."+ref.Source] = true
		tt := cv.root.At("secrets." + ref.Source)
		key := configKey(ref.Source)
		var msg string
		switch {
		case bool(top.External):
			name := top.Name
			if name == "" {
				name = ref.Source
			}
			cv.addSecret(service.Secret{Name: key, Source: service.SecretsManager, Key: name})
			tt.Warn("external", "ExternalSecret "+key, fmt.Sprintf("external secret: assumed to be in AWS Secrets Manager as %q; check the name, or change the source", name))
			tt.Use("name")
		case top.File != "":
			display := cv.pr.displayPath(top.File)
			if hasSentinel(top.File) {
				display = restoreVars(top.File)
			}
			cv.addSecret(service.Secret{Name: key, Source: service.SecretFile, Key: display})
			where := ""
			if !cv.pr.inProject(top.File) {
				where = " (not beside the compose file: it lives on the compose host)"
			} else if _, ok := fileExists(top.File); !ok {
				where = " (not found)"
			}
			msg = fmt.Sprintf("cutover did not read %s%s; store its content in AWS Secrets Manager as %s/%s and point the ExternalSecret at it, or create the Kubernetes Secret from the file", display, where, cv.pr.name, ref.Source)
			tt.Warn("file", "Secret key "+key, msg)
		case top.Environment != "":
			cv.addSecret(service.Secret{Name: key, Source: service.SecretsManager, Key: cv.pr.name + "/" + cv.svc.Name, Property: key})
			tt.Warn("environment", "ExternalSecret "+key, fmt.Sprintf("the value came from $%s on the compose host and was not copied: store it in AWS Secrets Manager as %s/%s, property %s", top.Environment, cv.pr.name, cv.svc.Name, key))
		default:
			cv.addSecret(service.Secret{Name: key, Source: service.SecretsManager, Key: cv.pr.name + "/" + cv.svc.Name, Property: key})
			if tt.Has("content") {
				tt.Warn("content", "ExternalSecret "+key, "inline secret content was not copied: store it in AWS Secrets Manager")
			}
		}
		vol := cv.volume(service.Volume{Name: "secrets", Kind: service.VolumeSecret})
		cv.addSecretToVolume(vol, key)
		target := ref.Target
		switch {
		case target == "":
			target = "/run/secrets/" + ref.Source
		case !strings.HasPrefix(target, "/"):
			target = "/run/secrets/" + target
		}
		c.VolumeMounts = append(c.VolumeMounts, service.VolumeMount{Name: vol, MountPath: target, SubPath: key, ReadOnly: true})
		tr.Mapped(field, fmt.Sprintf("Secret key %s mounted at %s", key, target))
		if ref.UID != "" || ref.GID != "" || ref.Mode != nil {
			t.Use(field)
			tr.Drop(field+".mode", "file owner and mode of a secret: Kubernetes mounts secret files 0644 owned by root unless defaultMode and fsGroup are set by hand")
		}
	}
	t.Use("secrets")
}

func (cv *conv) addSecret(s service.Secret) {
	for _, have := range cv.svc.Secrets {
		if have.Name == s.Name {
			return
		}
	}
	cv.svc.Secrets = append(cv.svc.Secrets, s)
}

// configs maps the service's configs: files from the project become
// ConfigMap keys mounted where the service expects them.
func (cv *conv) configs(t *ftrack, c *service.Container, cref string, sc types.ServiceConfig) {
	raws := map[string]item{}
	for _, it := range t.items("configs") {
		src := it.val.Value
		if it.val.Kind == yaml.MappingNode {
			for _, kv := range source.MapEntries(it.val) {
				if kv[0].Value == "source" {
					src = kv[1].Value
				}
			}
		}
		raws[src] = it
	}
	for _, ref := range sc.Configs {
		it, ok := raws[ref.Source]
		tr, field := t.in(t.pick("configs")), "configs"
		if ok {
			tr, field = t.in(it.file), it.path
		}
		top := cv.pr.p.Configs[ref.Source]
		cv.finish["configs."+ref.Source] = true
		tt := cv.root.At("configs." + ref.Source)
		key := configKey(ref.Source)
		target := ref.Target
		if target == "" {
			target = "/" + ref.Source
		}
		switch {
		case bool(top.External):
			tt.Warn("external", "", "external config: not part of the project; create a ConfigMap key "+key+" with its content by hand")
			tt.Use("name")
			tr.Drop(field, "external config not converted")
			continue
		case top.File != "":
			display := cv.pr.displayPath(top.File)
			st, exists := fileExists(top.File)
			switch {
			case !exists || st.IsDir():
				cv.config(key, "")
				tt.Fill("file", "ConfigMap key "+key, display+" was not found: put its content in the ConfigMap key "+key)
			case st.Size() > maxConfigFile:
				cv.config(key, "")
				tt.Fill("file", "ConfigMap key "+key, display+" is too large for a ConfigMap: bake it into the image or fill the key")
			default:
				data, err := os.ReadFile(top.File)
				if err != nil {
					cv.config(key, "")
					tt.Fill("file", "ConfigMap key "+key, fmt.Sprintf("cannot read %s: %v", display, err))
				} else {
					key = cv.configFileKey(key, string(data))
					tt.Mapped("file", "ConfigMap key "+key)
				}
			}
		case top.Content != "":
			key = cv.configFileKey(key, top.Content)
			tt.Mapped("content", "ConfigMap key "+key)
		case top.Environment != "":
			if v, ok := cv.pr.env[top.Environment]; ok {
				key = cv.configFileKey(key, v)
				tt.Mapped("environment", "ConfigMap key "+key)
			} else {
				cv.config(key, "")
				tt.Fill("environment", "ConfigMap key "+key, "$"+top.Environment+" is not set: put the content in the ConfigMap key "+key)
			}
		}
		vol := cv.volume(service.Volume{Name: "config-files", Kind: service.VolumeConfig})
		c.VolumeMounts = append(c.VolumeMounts, service.VolumeMount{Name: vol, MountPath: target, SubPath: key, ReadOnly: true})
		tr.Mapped(field, fmt.Sprintf("ConfigMap key %s mounted at %s", key, target))
		if ref.UID != "" || ref.GID != "" || ref.Mode != nil {
			tr.Drop(field+".mode", "file owner and mode: Kubernetes mounts ConfigMap files 0644 unless defaultMode is set by hand")
		}
	}
	t.Use("configs")
}

// dockerSize converts a docker size ("64m", "1g") to a quantity.
func dockerSize(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "k"), strings.HasSuffix(s, "kb"):
		mult = 1 << 10
	case strings.HasSuffix(s, "m"), strings.HasSuffix(s, "mb"):
		mult = 1 << 20
	case strings.HasSuffix(s, "g"), strings.HasSuffix(s, "gb"):
		mult = 1 << 30
	}
	num := strings.TrimRight(s, "kmgb")
	var n int64
	if _, err := fmt.Sscan(num, &n); err != nil || n <= 0 {
		return ""
	}
	return memQuantity(n * mult)
}
