package systemd

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/cutoverhq/cutover/service"
	"github.com/cutoverhq/cutover/source"
)

// conv converts one unit.
type conv struct {
	u    *unit
	opts source.Options
	svc  *service.Service
	c    *service.Container
	sp   *specifiers
	// entries are the unit's assignments, the unit file's then its
	// drop-ins', in the order systemd reads them.
	entries []*entry
	// env holds the variables the unit sets whose value is known, for
	// $VAR in command lines; secret values are not kept.
	env map[string]string
	// envFiles lists EnvironmentFile= paths that could not be read: a
	// variable nobody sets may come from them.
	missingEnvFiles []string
	// readOnlyRoot is set by ProtectSystem=strict.
	readOnlyRoot bool
	isServer     bool
	// shutdownSecs is TimeoutStopSec= in seconds, set by shutdown and
	// applied once kind knows whether a preStop sleep comes first.
	shutdownSecs  int64
	shutdownEntry *entry
	// shutdownUnbounded is set when systemd waited for ever (0 or
	// infinity): shutdownSecs is then unboundedStopSecs, a guess to report.
	shutdownUnbounded bool
}

func convert(u *unit, opts source.Options) (*service.Service, error) {
	if u.Main == nil {
		for _, d := range u.DropIns {
			return nil, &source.InputError{File: d.Path, Err: errors.New("drop-in without its unit file " + u.Name)}
		}
		return nil, errors.New("systemd: unit " + u.Name + " has no file")
	}
	main := u.Main
	if _, ok := main.Sections["Service"]; !ok {
		return nil, &source.InputError{File: main.Path, Line: 1, Field: "[Service]", Err: errors.New("no [Service] section: not a service unit")}
	}
	base := strings.TrimSuffix(u.Name, ".service")
	prefix, instance, template := base, "", false
	if i := strings.Index(base, "@"); i >= 0 {
		prefix, instance, template = base[:i], base[i+1:], true
	}
	name := service.SanitizeName(prefix)
	if instance != "" {
		name = service.SanitizeName(prefix + "-" + instance)
	}
	files := []string{main.Path}
	cv := &conv{
		u:    u,
		opts: opts,
		svc:  &service.Service{Name: name, Origin: service.Origin{Format: "systemd"}},
		sp:   &specifiers{unit: u.Name, prefix: prefix, instance: instance, template: template},
		env:  map[string]string{},
	}
	cv.entries = append(cv.entries, main.Entries...)
	for _, d := range u.DropIns {
		files = append(files, d.Path)
		cv.entries = append(cv.entries, d.Entries...)
	}
	for _, f := range []*unitFile{u.Socket, u.Timer} {
		if f != nil {
			files = append(files, f.Path)
		}
	}
	cv.svc.Origin.Files = files
	cv.svc.Containers = []service.Container{{Name: name}}
	cv.c = &cv.svc.Containers[0]
	if e := cv.last("Service", "User"); e != nil {
		cv.sp.user = e.Value
	}

	if err := cv.service(); err != nil {
		return nil, err
	}
	cv.unitSection()
	cv.install()
	if u.Socket != nil {
		cv.socket(u.Socket)
	}
	if cv.c.Ports == nil && u.Socket == nil {
		cv.guessPort()
	}
	cv.kind()
	if u.Timer != nil {
		cv.timer(u.Timer)
	}
	cv.finishInit()
	cv.rest()
	if err := cv.svc.Validate(); err != nil {
		return nil, fmt.Errorf("systemd: %w", err)
	}
	return cv.svc, nil
}

// Report helpers: each marks the entry reported.

func (cv *conv) mapped(e *entry, target string) {
	e.used = true
	cv.svc.Report.Mapped(e.File, e.Line, e.Field(), target)
}

func (cv *conv) warn(e *entry, target, msg string) {
	e.used = true
	cv.svc.Report.Warn(e.File, e.Line, e.Field(), target, msg)
}

func (cv *conv) drop(e *entry, msg string) {
	e.used = true
	cv.svc.Report.Drop(e.File, e.Line, e.Field(), msg)
}

func (cv *conv) fill(e *entry, target, msg string) {
	e.used = true
	cv.svc.Report.Fill(e.File, e.Line, e.Field(), target, msg)
}

// all returns the entries of section.key in order.
func (cv *conv) all(section, key string) []*entry {
	var out []*entry
	for _, e := range cv.entries {
		if e.Section == section && e.Key == key {
			out = append(out, e)
		}
	}
	return out
}

// last returns the assignment of a single-valued key that counts: the
// last one. Earlier ones are reported as overridden.
func (cv *conv) last(section, key string) *entry {
	es := cv.all(section, key)
	if len(es) == 0 {
		return nil
	}
	l := es[len(es)-1]
	for _, e := range es[:len(es)-1] {
		if !e.used {
			cv.drop(e, fmt.Sprintf("overridden by %s:%d", l.File, l.Line))
		}
	}
	return l
}

// list returns the assignments of a list key that count: those after the
// last empty assignment, which resets the list.
func (cv *conv) list(section, key string) []*entry {
	es := cv.all(section, key)
	start := 0
	for i, e := range es {
		if e.Value == "" {
			start = i + 1
		}
	}
	for i, e := range es[:start] {
		if e.used {
			continue
		}
		if e.Value == "" && i == start-1 {
			cv.mapped(e, "list reset")
			continue
		}
		r := es[start-1]
		cv.drop(e, fmt.Sprintf("reset by the empty assignment at %s:%d", r.File, r.Line))
	}
	return es[start:]
}

// expand resolves specifiers in a value and warns about the ones it
// cannot resolve.
func (cv *conv) expand(e *entry, s string) string {
	out, bad := cv.sp.expand(s)
	if len(bad) > 0 {
		cv.svc.Report.Warn(e.File, e.Line, e.Field(), "", cv.sp.describe(bad)+": left as written")
	}
	return out
}

func (cv *conv) service() error {
	// Environment first: command lines refer to it.
	cv.environment()
	cv.environmentFiles()
	cv.image()
	if err := cv.execStart(); err != nil {
		return err
	}
	if err := cv.execOthers(); err != nil {
		return err
	}
	cv.identity()
	cv.resources()
	cv.sandbox()
	cv.directories()
	cv.credentials()
	cv.shutdown()
	cv.logging()
	cv.buildPlaceholders()
	return nil
}

// buildPlaceholders warns about @placeholders@ left in settings other
// than command lines (where they became values to fill): the value was
// copied as written, and the build would have replaced them.
func (cv *conv) buildPlaceholders() {
	for _, e := range cv.entries {
		if strings.HasPrefix(e.Key, "Exec") || !buildVarRe.MatchString(e.Value) {
			continue
		}
		names := buildVarRe.FindAllString(e.Value, -1)
		cv.svc.Report.Warn(e.File, e.Line, e.Field(), "", fmt.Sprintf("%s is a build-time placeholder of a unit template (.service.in), kept as written: replace it with what the package build puts there (for example /etc for @sysconfdir@)", strings.Join(names, ", ")))
	}
}

// image: a VM has none.
func (cv *conv) image() {
	if cv.opts.Image != "" {
		cv.c.Image = cv.opts.Image
		return
	}
	bin := ""
	for _, e := range cv.all("Service", "ExecStart") {
		if c, err := parseCommand(e.Value); err == nil {
			bin = c.Binary
		}
	}
	reason := "a VM has no image: build one that contains " + orDefault(bin, "the program") + " and the files it reads, push it, and fill its reference"
	cv.c.ImageValue = cv.svc.AddValue("image", "", reason)
	hdr := cv.u.Main.Sections["Service"]
	cv.svc.Report.Fill(cv.u.Main.Path, hdr, "Service", "values fill.image", reason)
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

var wholeVarRe = regexp.MustCompile(`^\$([A-Za-z_][A-Za-z0-9_]*)$`)

// argv turns a parsed command into a container command: specifiers
// resolved, $VAR and ${VAR} rewritten as Kubernetes $(VAR) references
// to env vars the container has (or values to fill), and literal $
// escaped so Kubernetes leaves it alone.
func (cv *conv) argv(e *entry, c *command) []string {
	out := cv.argvWords(e, c)
	// The instance and build-time placeholders become $(VAR) references
	// only now, after escaping, which would have turned their $ into $$.
	for i, w := range out {
		w = strings.ReplaceAll(w, instanceMark, "$(INSTANCE)")
		out[i] = buildVarRe.ReplaceAllStringFunc(w, func(m string) string {
			name := m[1 : len(m)-1]
			cv.buildVar(e, name)
			return "$(" + name + ")"
		})
	}
	return out
}

// socketFlagRe is a command-line flag that tells a program to use the
// socket systemd activation passed (node_exporter --web.systemd-socket,
// dockerd -H fd://).
var socketFlagRe = regexp.MustCompile(`(?i)^(--?[a-z.-]*systemd-socket[a-z-]*(=.*)?|(-H|--host)?=?fd://.*|--?socket-activation(=.*)?|--?systemd-activation(=.*)?)$`)

// instanceMark stands for an uninstantiated template's %i in a command
// word until the word is escaped; no unit text holds a NUL.
const instanceMark = "\x00INSTANCE\x00"

// buildVarRe is an autoconf/meson placeholder, @bindir@ or @SBINDIR@: a
// unit shipped as foo.service.in has them until the package is built.
var buildVarRe = regexp.MustCompile(`@[A-Za-z_][A-Za-z0-9_]*@`)

// buildVar makes a build-time placeholder a value to fill, once.
func (cv *conv) buildVar(e *entry, name string) {
	for _, ev := range cv.c.Env {
		if ev.Name == name {
			return
		}
	}
	reason := fmt.Sprintf("@%s@ is a build-time placeholder of a unit template (.service.in), replaced when the package is built: fill what it stands for in the image (a directory such as /usr/sbin)", name)
	ref := cv.svc.AddValue(service.FillKey("env", name), "", reason)
	cv.c.Env = append(cv.c.Env, service.EnvVar{Name: name, ValueRef: ref})
	cv.fill(e, "values fill."+ref, reason)
}

func (cv *conv) argvWords(e *entry, c *command) []string {
	var out []string
	for _, w := range c.Argv {
		w = cv.expandCmd(e, w)
		if c.NoEnv {
			out = append(out, escapeDollar(w))
			continue
		}
		// A word that is only $VAR is split into words by systemd; a
		// Kubernetes $(VAR) stays one argument. A known value with
		// spaces is inlined, word by word.
		if m := wholeVarRe.FindStringSubmatch(w); m != nil {
			v, known := cv.env[m[1]]
			if known && strings.TrimSpace(v) == "" && len(cv.missingEnvFiles) == 0 {
				// systemd splits an empty $VAR into no word at all;
				// Kubernetes would pass one empty argument.
				cv.svc.Report.Warn(e.File, e.Line, e.Field(), "", fmt.Sprintf("$%s is empty, so systemd passed no argument for it: left out of the command (Kubernetes would pass an empty one); a change of %s needs a new conversion", m[1], m[1]))
				continue
			}
			if known && strings.ContainsAny(v, " \t") {
				if words, err := splitWords(v); err == nil {
					for _, x := range words {
						out = append(out, escapeDollar(x))
					}
					cv.svc.Report.Warn(e.File, e.Line, e.Field(), "", fmt.Sprintf("$%s was expanded into its words at conversion (%q), as systemd splits it; a change of %s needs a new conversion", m[1], v, m[1]))
					continue
				}
			}
			if msg := cv.wordsWarning(m[1], v, known); msg != "" {
				cv.svc.Report.Warn(e.File, e.Line, e.Field(), "", msg)
			}
			cv.needVar(e, m[1])
			out = append(out, "$("+m[1]+")")
			continue
		}
		out = append(out, cv.refs(e, w))
	}
	return out
}

// wordsWarning says why a whole-word $name, which systemd splits into
// words, may not be the one argument $(name) Kubernetes passes: its value
// is unknown, may come from an environment file that was not found, or
// could not be split. It is empty when the known value is one word.
func (cv *conv) wordsWarning(name, v string, known bool) string {
	var why string
	switch {
	case !known:
		if _, _, ok := cv.systemdVar(name); ok {
			return "" // systemd's own variables are one word
		}
		why = fmt.Sprintf("$%s has no value here", name)
		if len(cv.missingEnvFiles) > 0 {
			why += " (it may come from " + strings.Join(cv.missingEnvFiles, " or ") + ", which was not found)"
		}
	case strings.ContainsAny(v, " \t"):
		why = fmt.Sprintf("$%s (%q) cannot be split into words as systemd does", name, v)
	case len(cv.missingEnvFiles) > 0:
		is := "is empty here"
		if strings.TrimSpace(v) != "" {
			is = fmt.Sprintf("is %q here", v)
		}
		why = fmt.Sprintf("$%s %s but may be set by %s, which was not found", name, is, strings.Join(cv.missingEnvFiles, " or "))
	default:
		return ""
	}
	return fmt.Sprintf("%s: systemd splits it into words (none when empty), Kubernetes passes $(%s) as one argument; once you know its value, write its words into the command", why, name)
}

// refs rewrites ${VAR} in a word as $(VAR); "$$" is a literal $, and a
// $NAME inside a word is not expanded by systemd either.
func (cv *conv) refs(e *entry, w string) string {
	var b strings.Builder
	for i := 0; i < len(w); i++ {
		if w[i] != '$' {
			b.WriteByte(w[i])
			continue
		}
		if i+1 < len(w) && w[i+1] == '$' {
			b.WriteString("$$")
			i++
			continue
		}
		if i+1 < len(w) && w[i+1] == '{' {
			if j := strings.IndexByte(w[i:], '}'); j > 2 {
				name := w[i+2 : i+j]
				if envNameRe.MatchString(name) {
					cv.needVar(e, name)
					b.WriteString("$(" + name + ")")
					i += j
					continue
				}
			}
		}
		b.WriteString("$$")
	}
	return b.String()
}

// escapeDollar doubles every $ so Kubernetes keeps it literal.
func escapeDollar(s string) string { return strings.ReplaceAll(s, "$", "$$") }

// expandCmd resolves specifiers in a command word; an uninstantiated
// template's %i becomes $(INSTANCE), a value to fill.
func (cv *conv) expandCmd(e *entry, w string) string {
	if cv.sp.template && cv.sp.instance == "" {
		for _, s := range []string{"%i", "%I"} {
			if strings.Contains(w, s) && !strings.Contains(w, "%"+s) {
				w = strings.ReplaceAll(w, s, instanceMark)
				cv.instanceValue()
			}
		}
	}
	return cv.expand(e, w)
}

func (cv *conv) instanceValue() {
	for _, ev := range cv.c.Env {
		if ev.Name == "INSTANCE" {
			return
		}
	}
	ref := cv.svc.AddValue(service.FillKey("env", "INSTANCE"), "", cv.u.Name+" is a template: fill the instance name (%i) this deployment runs as")
	cv.c.Env = append(cv.c.Env, service.EnvVar{Name: "INSTANCE", ValueRef: ref})
}

// needVar makes sure the container has env var name, for a $(name)
// reference: when no Environment= or readable EnvironmentFile= sets it,
// it becomes a value to fill.
func (cv *conv) needVar(e *entry, name string) {
	for _, ev := range cv.c.Env {
		if ev.Name == name {
			return
		}
	}
	if _, ok := cv.env[name]; ok {
		return
	}
	if _, ok := cv.svc.Config[name]; ok {
		return
	}
	if v, from, ok := cv.systemdVar(name); ok {
		cv.config(name, v)
		cv.setEnv(name, service.EnvVar{Name: name, ConfigKey: name})
		cv.svc.Report.Mapped(e.File, e.Line, e.Field(), fmt.Sprintf("containers[%s].env %s ← ConfigMap (%s, which systemd sets from %s)", cv.c.Name, name, v, from))
		return
	}
	reason := fmt.Sprintf("%s uses $%s, which no Environment= sets", e.Key, name)
	switch len(cv.missingEnvFiles) {
	case 0:
	case 1:
		reason += " (it may come from " + cv.missingEnvFiles[0] + ", which was not found)"
	default:
		reason += " (it may come from " + strings.Join(cv.missingEnvFiles, " or ") + ", which were not found)"
	}
	ref := cv.svc.AddValue(service.FillKey("env", name), "", reason)
	cv.c.Env = append(cv.c.Env, service.EnvVar{Name: name, ValueRef: ref})
	cv.svc.Report.Fill(e.File, e.Line, e.Field(), "values fill."+ref, reason+": fill it")
}

func (cv *conv) execStart() error {
	starts := cv.list("Service", "ExecStart")
	typ := "simple"
	if e := cv.last("Service", "Type"); e != nil {
		typ = e.Value
	}
	if len(starts) == 0 {
		hdr := cv.u.Main.Sections["Service"]
		return &source.InputError{File: cv.u.Main.Path, Line: hdr, Field: "Service.ExecStart", Err: errors.New("no ExecStart=: nothing to run")}
	}
	if len(starts) > 1 && typ != "oneshot" {
		e := starts[1]
		return &source.InputError{File: e.File, Line: e.Line, Field: e.Field(), Err: fmt.Errorf("more than one ExecStart= is only allowed with Type=oneshot (Type=%s)", typ)}
	}
	// A oneshot's commands run in order: all but the last become init
	// containers, which Kubernetes runs in order too.
	for i, e := range starts {
		c, err := parseCommand(e.Value)
		if err != nil {
			return &source.InputError{File: e.File, Line: e.Line, Field: e.Field(), Err: fmt.Errorf("cannot parse the command line: %w", err)}
		}
		argv := cv.argv(e, c)
		if i < len(starts)-1 {
			cv.initContainer(e, c, argv, fmt.Sprintf("step-%d", i+1))
			continue
		}
		cv.c.Command = argv
		for _, w := range argv {
			if socketFlagRe.MatchString(w) {
				cv.warn(e, "containers["+cv.c.Name+"].command", fmt.Sprintf("%s makes the program take its listening socket from systemd (LISTEN_FDS), which no pod passes: replace it with the program's own listen flag for the port", w))
				break
			}
		}
		var notes []string
		notes = append(notes, c.Binary+" must exist in the image")
		if c.Argv0 {
			notes = append(notes, "@ set argv[0]; the container runs the binary under its own name")
		}
		if c.IgnoreFailure {
			notes = append(notes, "- ignored a failing exit; Kubernetes counts it as a failure")
		}
		if c.Privileged != "" {
			notes = append(notes, c.Privileged+" ran it with full privileges; the container runs it with the pod's")
		}
		if !strings.HasPrefix(c.Binary, "/") && !buildVarRe.MatchString(c.Binary) {
			notes = append(notes, "the image's PATH must find it")
		}
		cv.warn(e, "containers["+cv.c.Name+"].command", strings.Join(notes, "; "))
	}
	return nil
}

// initContainer runs a command before the main container, in the same
// image.
func (cv *conv) initContainer(e *entry, c *command, argv []string, name string) {
	if c.IgnoreFailure {
		// systemd went on when it failed; an init container that fails
		// blocks the pod.
		argv = []string{"/bin/sh", "-c", shellJoin(argv) + " || true"}
	}
	ic := service.Container{
		Name:          service.SanitizeName(cv.c.Name + "-" + name),
		Image:         cv.c.Image,
		ImageValue:    cv.c.ImageValue,
		Command:       argv,
		Env:           cv.c.Env,
		EnvFromConfig: cv.c.EnvFromConfig,
		WorkingDir:    cv.c.WorkingDir,
	}
	cv.svc.InitContainers = append(cv.svc.InitContainers, ic)
	msg := "runs before the main container, in the same image, every time a pod starts"
	if c.Privileged != "" {
		msg += "; " + c.Privileged + " ran it with full privileges, the init container runs with the pod's"
	}
	if c.IgnoreFailure {
		msg += "; its failure was ignored (-), so it runs as sh -c '… || true' (the image needs /bin/sh)"
	}
	cv.warn(e, "initContainers["+ic.Name+"]", msg)
}

func (cv *conv) execOthers() error {
	for i, e := range cv.list("Service", "ExecStartPre") {
		c, err := parseCommand(e.Value)
		if err != nil {
			return &source.InputError{File: e.File, Line: e.Line, Field: e.Field(), Err: fmt.Errorf("cannot parse the command line: %w", err)}
		}
		cv.initContainer(e, c, cv.argv(e, c), fmt.Sprintf("pre-%d", i+1))
	}
	// ExecStartPre init containers run before the oneshot steps.
	if n := len(cv.list("Service", "ExecStartPre")); n > 0 && len(cv.svc.InitContainers) > n {
		steps := cv.svc.InitContainers[:len(cv.svc.InitContainers)-n]
		pre := cv.svc.InitContainers[len(cv.svc.InitContainers)-n:]
		cv.svc.InitContainers = append(append([]service.Container(nil), pre...), steps...)
	}
	for _, e := range cv.list("Service", "ExecStartPost") {
		cv.drop(e, "runs after start: add a postStart hook by hand if it is needed (it may run before the app is ready)")
	}
	for _, e := range cv.list("Service", "ExecCondition") {
		cv.warn(e, "", "a failing condition skipped the service on the VM; on Kubernetes decide at deploy time whether to run it")
	}
	for _, e := range cv.list("Service", "ExecReload") {
		cv.warn(e, "", "no reload on Kubernetes: a configuration change rolls out new pods (or send the signal yourself with kubectl exec)")
	}
	for _, e := range cv.list("Service", "ExecStop") {
		cv.warn(e, "", "Kubernetes stops the container with SIGTERM, not with this command; if it does more than stop the process, run it from a preStop hook")
	}
	for _, e := range cv.list("Service", "ExecStopPost") {
		cv.drop(e, "nothing runs after a container stops; clean-up belongs in the app or a preStop hook")
	}
	return nil
}

// identity maps User=, Group=, DynamicUser=, WorkingDirectory=.
func (cv *conv) identity() {
	ref := "containers[" + cv.c.Name + "]"
	if e := cv.last("Service", "User"); e != nil {
		v := cv.expand(e, e.Value)
		switch {
		case isNumeric(v):
			n, _ := strconv.ParseInt(v, 10, 64)
			cv.c.RunAsUser = &n
			if n == 0 {
				cv.warn(e, ref+".securityContext.runAsUser 0", "runs as root: the restricted Pod Security Standard refuses it")
			} else {
				cv.mapped(e, ref+".securityContext.runAsUser")
			}
		case v == "root":
			var n int64
			cv.c.RunAsUser = &n
			cv.warn(e, ref+".securityContext.runAsUser 0", "runs as root: the restricted Pod Security Standard refuses it")
		default:
			cv.c.UserName = v
			cv.warn(e, "", fmt.Sprintf("user %q is a name on the VM: Kubernetes needs a numeric runAsUser, so the chart's default user runs it; create the user in the image and set its uid as runAsUser", v))
		}
	}
	if e := cv.last("Service", "Group"); e != nil {
		v := cv.expand(e, e.Value)
		if isNumeric(v) {
			n, _ := strconv.ParseInt(v, 10, 64)
			cv.c.RunAsGroup = &n
			cv.mapped(e, ref+".securityContext.runAsGroup")
		} else {
			cv.warn(e, "", fmt.Sprintf("group %q is a name on the VM: Kubernetes needs a numeric runAsGroup (fsGroup for volume ownership)", v))
		}
	}
	if e := cv.last("Service", "DynamicUser"); e != nil {
		if parseBool(e.Value) {
			cv.warn(e, "securityContext.runAsNonRoot", "systemd picked a throwaway uid: run as a fixed non-root uid of the image, with runAsNonRoot: true")
		} else {
			cv.mapped(e, "nothing to do")
		}
	}
	for _, e := range cv.list("Service", "SupplementaryGroups") {
		cv.drop(e, "supplementary groups go in the pod's securityContext.supplementalGroups, as numeric ids, by hand")
	}
	if e := cv.last("Service", "WorkingDirectory"); e != nil {
		v := strings.TrimPrefix(cv.expand(e, e.Value), "-")
		switch {
		case v == "~":
			cv.warn(e, "", "the user's home directory on the VM: set the image's WORKDIR")
		case strings.HasPrefix(v, "/"):
			cv.c.WorkingDir = v
			cv.mapped(e, ref+".workingDir")
		default:
			cv.warn(e, "", "not an absolute path: the image's WORKDIR applies")
		}
	}
}

// finishInit gives the init containers what the main container got after
// they were made: its environment, identity and working directory.
func (cv *conv) finishInit() {
	for i := range cv.svc.InitContainers {
		ic := &cv.svc.InitContainers[i]
		ic.Env = append([]service.EnvVar(nil), cv.c.Env...)
		ic.EnvFromConfig = cv.c.EnvFromConfig
		ic.RunAsUser, ic.RunAsGroup, ic.WorkingDir = cv.c.RunAsUser, cv.c.RunAsGroup, cv.c.WorkingDir
		ic.UserName = cv.c.UserName
		ic.ReadOnlyRootFilesystem = cv.c.ReadOnlyRootFilesystem
		ic.CapAdd, ic.CapDrop = cv.c.CapAdd, cv.c.CapDrop
		ic.VolumeMounts = append([]service.VolumeMount(nil), cv.c.VolumeMounts...)
	}
}

func parseBool(s string) bool {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "yes", "true", "on":
		return true
	}
	return false
}

// startLimitKeys are the start rate limit's keys. systemd reads them in
// [Unit], and still in [Service] where they were before systemd 229.
var startLimitKeys = map[string]bool{"StartLimitIntervalSec": true, "StartLimitBurst": true, "StartLimitInterval": true, "StartLimitAction": true}

// unitSection maps [Unit]: ordering and conditions have no counterpart.
// The start rate limit is mapped here from [Service] too.
func (cv *conv) unitSection() {
	for _, e := range cv.entries {
		if e.used || e.Section != "Unit" && !(e.Section == "Service" && startLimitKeys[e.Key]) {
			continue
		}
		if startLimitKeys[e.Key] {
			cv.drop(e, "the kubelet backs off restarts by itself (CrashLoopBackOff)")
			continue
		}
		switch e.Key {
		case "Description", "Documentation":
			cv.drop(e, "kept in the report only; add it as an annotation by hand")
		case "After", "Before", "Wants", "Requires", "BindsTo", "PartOf", "Requisite", "Upholds":
			// Targets order nothing in a pod.
			var units []string
			for _, w := range strings.Fields(e.Value) {
				if !strings.HasSuffix(w, ".target") {
					units = append(units, w)
				}
			}
			// The unit's own socket is converted with it.
			var rest []string
			for _, w := range units {
				if cv.u.Socket == nil || w != filepath.Base(cv.u.Socket.Path) {
					rest = append(rest, w)
				}
			}
			if len(rest) < len(units) && len(rest) == 0 {
				cv.mapped(e, "nothing to do: its socket unit is converted with it")
				continue
			}
			units = rest
			if len(units) == 0 {
				cv.mapped(e, "nothing to do: a pod starts with its network and file systems up")
				continue
			}
			cv.warn(e, "", fmt.Sprintf("Kubernetes has no ordering between workloads: %s may not be up when this starts; the app must retry (readiness probes gate traffic)", strings.Join(units, ", ")))
		case "Conflicts":
			cv.drop(e, "no counterpart: workloads do not exclude each other")
		case "OnFailure", "OnSuccess":
			cv.warn(e, "", "no unit runs on failure: alert on the pod's restarts instead")
		case "DefaultDependencies", "IgnoreOnIsolate", "RefuseManualStart", "RefuseManualStop", "AllowIsolate", "StopWhenUnneeded", "JobTimeoutSec", "SourcePath", "CollectMode":
			cv.drop(e, "systemd dependency handling: no counterpart")
		default:
			if strings.HasPrefix(e.Key, "Condition") || strings.HasPrefix(e.Key, "Assert") {
				cv.drop(e, "checked on the VM at start; in a pod, let the entrypoint check it")
			}
		}
	}
}

// install maps [Install]: enablement.
func (cv *conv) install() {
	for _, e := range cv.entries {
		if e.Section == "Install" && !e.used {
			cv.drop(e, "enablement at boot: on Kubernetes a workload runs when it is deployed (Argo CD syncs it)")
		}
	}
}

// kind decides how the workload runs: Type=oneshot and Restart=no run
// once (a Job); anything else is a long-running Deployment.
func (cv *conv) kind() {
	typ := cv.last("Service", "Type")
	restart := cv.last("Service", "Restart")
	kind := service.KindWorker
	if cv.isServer {
		kind = service.KindServer
	}
	if typ != nil {
		switch typ.Value {
		case "simple", "exec", "idle":
			cv.mapped(typ, "container process")
		case "notify", "notify-reload":
			cv.warn(typ, "readinessProbe", "no NOTIFY_SOCKET in a pod: sd_notify(READY=1) does nothing; a readiness probe must say when the service is ready")
		case "forking":
			cv.warn(typ, "", "the process daemonizes on the VM: in a container it must stay in the foreground (e.g. nginx -g 'daemon off;', --foreground), or the container exits at once")
		case "oneshot":
			kind = service.KindJob
			cv.mapped(typ, "Job")
		case "dbus":
			cv.warn(typ, "", "no D-Bus in a pod: the service must not wait for its bus name")
		default:
			cv.warn(typ, "", "unknown Type "+typ.Value)
		}
	}
	if restart != nil {
		switch restart.Value {
		case "no":
			if kind != service.KindJob {
				kind = service.KindJob
				cv.warn(restart, "Job", "Restart=no: the process is not restarted, so it became a Job; if it is long-running, a Deployment (Restart=always) is what you want")
			} else {
				cv.mapped(restart, "Job restartPolicy Never")
			}
		case "always":
			if kind == service.KindJob {
				cv.warn(restart, "Job", "Type=oneshot with Restart=always: a Job runs to completion once")
			} else {
				cv.mapped(restart, "Deployment (restartPolicy Always)")
			}
		case "on-failure", "on-abnormal", "on-abort", "on-watchdog":
			if kind == service.KindJob {
				cv.mapped(restart, "Job restartPolicy OnFailure")
			} else {
				cv.warn(restart, "Deployment", "a Deployment restarts the container whenever it exits, also after a clean exit")
			}
		case "on-success":
			cv.warn(restart, "Deployment", "restarted only after a clean exit on the VM; a Deployment restarts on any exit")
		default:
			cv.warn(restart, "", "unknown Restart "+restart.Value)
		}
	} else if kind != service.KindJob {
		hdr := cv.u.Main.Sections["Service"]
		cv.svc.Report.Warn(cv.u.Main.Path, hdr, "Service.Restart", "Deployment", "not set (systemd's default is no: a crash left the service down); a Deployment restarts the process whenever it exits")
	}
	cv.svc.Kind = kind
	if kind == service.KindJob {
		if e := cv.last("Service", "RuntimeMaxSec"); e != nil {
			if secs, ok := parseSeconds(e.Value); ok {
				cv.svc.TimeoutSeconds = int64(secs)
				cv.mapped(e, fmt.Sprintf("activeDeadlineSeconds %d", cv.svc.TimeoutSeconds))
			}
		}
	}
	if cv.svc.Kind == service.KindServer && cv.c.PreStopSleepSeconds == 0 {
		cv.c.PreStopSleepSeconds = preStopSleep
	}
	if e := cv.shutdownEntry; e != nil {
		g := cv.shutdownSecs + cv.c.PreStopSleepSeconds
		cv.svc.TerminationGracePeriodSeconds = &g
		if cv.shutdownUnbounded {
			sleep := ""
			if cv.c.PreStopSleepSeconds > 0 {
				sleep = fmt.Sprintf(" (after a %ds preStop sleep)", cv.c.PreStopSleepSeconds)
			}
			cv.warn(e, fmt.Sprintf("terminationGracePeriodSeconds %d", g), fmt.Sprintf("%s=%s: systemd waited without limit for the process to stop; Kubernetes needs a limit and sends SIGKILL when it runs out, so %ds after SIGTERM%s was chosen: set the time the process really needs to stop", e.Key, e.Value, cv.shutdownSecs, sleep))
		} else if cv.c.PreStopSleepSeconds > 0 {
			cv.mapped(e, fmt.Sprintf("terminationGracePeriodSeconds %d (%ds preStop sleep, so load balancers stop sending first, + %ds after SIGTERM)", g, cv.c.PreStopSleepSeconds, cv.shutdownSecs))
		} else {
			cv.mapped(e, fmt.Sprintf("terminationGracePeriodSeconds %d", g))
		}
	}
}

// preStopSleep is the preStop sleep of a server, so load balancers stop
// sending before SIGTERM.
const preStopSleep = 5

// unboundedStopSecs is the grace given to a process systemd waited on
// without limit (TimeoutStopSec=0 or infinity): long enough for a slow
// clean stop, short enough that a hung pod does not block a rollout for
// ever.
const unboundedStopSecs = 3600

// shutdown maps TimeoutStopSec= and KillSignal=.
func (cv *conv) shutdown() {
	stop := cv.last("Service", "TimeoutStopSec")
	both := cv.last("Service", "TimeoutSec")
	if start := cv.last("Service", "TimeoutStartSec"); start != nil {
		cv.drop(start, "start-up time limit: a startupProbe bounds it on Kubernetes; add one (failureThreshold × periodSeconds)")
	}
	e := stop
	if e == nil {
		e = both
	} else if both != nil {
		cv.drop(both, "TimeoutStopSec= overrides it")
	}
	if e != nil {
		secs, ok := parseSeconds(e.Value)
		switch {
		case e.Value == "infinity" || ok && secs == 0:
			// systemd reads both as "no timeout": it waits for ever.
			// Kubernetes has no such grace; 0 there means kill at once.
			cv.shutdownSecs = unboundedStopSecs
			cv.shutdownUnbounded = true
			cv.shutdownEntry = e
		case !ok:
			cv.warn(e, "", "cannot read the time span "+e.Value)
		default:
			s := int64(secs + 0.999)
			// The server's preStop sleep comes before SIGTERM: add it so
			// the process keeps its whole stop time.
			cv.shutdownSecs = s
			cv.shutdownEntry = e
		}
	}
	if k := cv.last("Service", "KillSignal"); k != nil {
		sig := strings.TrimPrefix(strings.ToUpper(k.Value), "SIG")
		if sig == "TERM" || sig == "15" {
			cv.mapped(k, "SIGTERM (the Kubernetes default)")
		} else {
			cv.warn(k, "", fmt.Sprintf("Kubernetes sends SIGTERM, not SIG%s: put STOPSIGNAL SIG%s in the image (the container runtime honours it) or make the app stop cleanly on SIGTERM", sig, sig))
		}
	}
	for _, key := range []string{"RestartSec", "RestartSteps", "RestartMaxDelaySec"} {
		if e := cv.last("Service", key); e != nil {
			cv.drop(e, "the kubelet restarts a crashed container with its own back-off (10s doubling to 5m)")
		}
	}
	if e := cv.last("Service", "WatchdogSec"); e != nil {
		cv.warn(e, "livenessProbe", "the app pinged sd_notify(WATCHDOG=1), which does nothing in a pod: a liveness probe must detect a hung process instead")
	}
	for _, key := range []string{"NotifyAccess", "PIDFile", "GuessMainPID", "RemainAfterExit", "BusName", "NonBlocking", "FileDescriptorStoreMax", "SuccessExitStatus", "RestartPreventExitStatus", "RestartForceExitStatus", "PermissionsStartOnly", "RootDirectoryStartOnly", "ExitType", "OOMPolicy"} {
		for _, e := range cv.all("Service", key) {
			cv.drop(e, "systemd process supervision detail: a container has one main process, watched by the kubelet")
		}
	}
	if e := cv.last("Service", "SendSIGKILL"); e != nil {
		if !parseBool(e.Value) {
			cv.warn(e, "", "SendSIGKILL=no: systemd never killed a process that ignored SIGTERM; Kubernetes sends SIGKILL when terminationGracePeriodSeconds ends, so make that long enough for a clean stop")
		} else {
			cv.drop(e, "Kubernetes sends SIGTERM to the container's main process, then SIGKILL after the grace period")
		}
	}
	for _, key := range []string{"KillMode", "SendSIGHUP", "FinalKillSignal", "RestartKillSignal", "TimeoutAbortSec", "WatchdogSignal"} {
		if e := cv.last("Service", key); e != nil {
			cv.drop(e, "Kubernetes sends SIGTERM to the container's main process, then SIGKILL after the grace period")
		}
	}
}

// parseSeconds reads a systemd time span ("90", "1min 30s", "500ms").
func parseSeconds(s string) (float64, bool) {
	s = strings.TrimSpace(s)
	if s == "" || s == "infinity" {
		return 0, false
	}
	if n, err := strconv.ParseFloat(s, 64); err == nil {
		return n, n >= 0
	}
	units := map[string]float64{
		"us": 1e-6, "usec": 1e-6, "ms": 1e-3, "msec": 1e-3,
		"s": 1, "sec": 1, "second": 1, "seconds": 1,
		"m": 60, "min": 60, "minute": 60, "minutes": 60,
		"h": 3600, "hr": 3600, "hour": 3600, "hours": 3600,
		"d": 86400, "day": 86400, "days": 86400,
		"w": 604800, "week": 604800, "weeks": 604800,
	}
	total := 0.0
	re := regexp.MustCompile(`^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-z]+)`)
	for strings.TrimSpace(s) != "" {
		m := re.FindStringSubmatch(s)
		if m == nil {
			return 0, false
		}
		u, ok := units[m[2]]
		if !ok {
			return 0, false
		}
		n, _ := strconv.ParseFloat(m[1], 64)
		total += n * u
		s = s[len(m[0]):]
	}
	return total, true
}

// logging maps StandardOutput= and friends: the container's stdout is
// collected by the node's log agent.
func (cv *conv) logging() {
	for _, key := range []string{"StandardOutput", "StandardError"} {
		e := cv.last("Service", key)
		if e == nil {
			continue
		}
		switch {
		case e.Value == "journal" || e.Value == "inherit" || e.Value == "syslog" || e.Value == "kmsg" || e.Value == "journal+console" || e.Value == "syslog+console" || e.Value == "tty":
			stream := map[string]string{"StandardOutput": "stdout", "StandardError": "stderr"}[key]
			cv.mapped(e, "container "+stream+" (collected by the node's log agent)")
		case e.Value == "null":
			cv.warn(e, "", "output was discarded on the VM; in a container it is collected unless the app is quieted")
		default:
			cv.warn(e, "container stdout", "the process wrote to "+e.Value+": on Kubernetes it should log to stdout/stderr, where the node's log agent collects it")
		}
	}
	for _, key := range []string{"StandardInput", "SyslogIdentifier", "SyslogFacility", "SyslogLevel", "SyslogLevelPrefix", "LogLevelMax", "LogExtraFields", "LogRateLimitIntervalSec", "LogRateLimitBurst", "LogNamespace", "TTYPath"} {
		for _, e := range cv.all("Service", key) {
			cv.drop(e, "journald setting: logs are labelled by pod and container on Kubernetes")
		}
	}
}

// rest reports every key nobody reported.
func (cv *conv) rest() {
	for _, f := range append([]*unitFile{cv.u.Main}, cv.u.DropIns...) {
		for _, sec := range service.SortedKeys(f.Sections) {
			line := f.Sections[sec]
			switch sec {
			case "Unit", "Service", "Install":
			default:
				if strings.HasPrefix(sec, "X-") {
					cv.svc.Report.Drop(f.Path, line, "["+sec+"]", "vendor extension section: systemd ignores it too")
				} else {
					cv.svc.Report.Drop(f.Path, line, "["+sec+"]", "section of another unit type: not part of a service")
				}
			}
		}
	}
	for _, e := range cv.entries {
		if e.used {
			continue
		}
		switch {
		case e.Section != "Unit" && e.Section != "Service" && e.Section != "Install":
			e.used = true
		case e.Section == "Service" && !knownService[e.Key]:
			cv.warn(e, "", "unknown key: systemd ignores it too (a typo?)")
		default:
			cv.drop(e, "cutover does not map this key")
		}
	}
}

func shellJoin(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if a != "" && !strings.ContainsAny(a, " \t\n'\"\\$`|&;<>()*?[]{}~#!") {
			out[i] = a
			continue
		}
		out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(out, " ")
}
