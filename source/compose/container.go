package compose

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/distribution/reference"

	"github.com/cutoverhq/cutover/service"
)

// container converts the container part of a compose service: the main
// container of its own Service, or an init container of a dependent.
func (cv *conv) container(t *ftrack, name string, sc types.ServiceConfig, main bool) service.Container {
	c := service.Container{Name: service.SanitizeName(name)}
	cv.svcImage = sc.Image
	cref := "containers[" + c.Name + "]"
	if !main {
		cref = "initContainers[" + c.Name + "]"
	}
	cv.image(t, &c, cref, sc, main)
	// environment first: a withheld secret the command uses is then
	// already the container's env var (see varEnv).
	cv.environment(t, &c, cref, sc, main)
	cv.envFiles(t, &c, cref, sc, main)
	c.Command = cv.command(t, &c, "entrypoint", cref+".command", sc.Entrypoint)
	c.Args = cv.command(t, &c, "command", cref+".args", sc.Command)

	if sc.WorkingDir != "" {
		if hasSentinel(sc.WorkingDir) {
			t.Warn("working_dir", "", cv.leftOut(sc.WorkingDir, "the image's WORKDIR applies", "set it and convert again"))
		} else {
			c.WorkingDir = sc.WorkingDir
			t.Mapped("working_dir", cref+".workingDir")
		}
	}
	cv.user(t, &c, cref, sc.User)
	if sc.ReadOnly {
		ro := true
		c.ReadOnlyRootFilesystem = &ro
		t.Mapped("read_only", cref+".securityContext.readOnlyRootFilesystem")
	} else if t.Has("read_only") {
		ro := false
		c.ReadOnlyRootFilesystem = &ro
		t.Mapped("read_only", cref+".securityContext.readOnlyRootFilesystem")
	}
	if sc.Privileged {
		c.Privileged = true
		t.Warn("privileged", cref+".securityContext.privileged", "privileged pods are refused by the baseline and restricted Pod Security Standards: grant the capabilities it needs instead")
	} else if t.Has("privileged") {
		t.Mapped("privileged", cref+".securityContext.privileged")
	}
	if len(sc.CapAdd) > 0 {
		c.CapAdd = capNames(sc.CapAdd)
		t.Warn("cap_add", cref+".securityContext.capabilities.add", "the restricted Pod Security Standard allows adding only NET_BIND_SERVICE")
	}
	if len(sc.CapDrop) > 0 {
		c.CapDrop = capNames(sc.CapDrop)
		t.Mapped("cap_drop", cref+".securityContext.capabilities.drop")
	}
	cv.resources(t, &c, cref, sc)
	cv.storage(t, &c, cref, sc)
	if main {
		cv.ports(t, &c, cref, sc)
		cv.healthcheck(t, &c, cref, sc)
	}
	return c
}

var placeholderRe = regexp.MustCompile(`<[^<>]+>|#\{[^}]*\}|\{\{[^}]*\}\}|%[A-Za-z_][A-Za-z0-9_]*%|__[A-Z0-9_]+__|\$[A-Za-z_{]|@[A-Za-z_]+@`)

// wholePlaceholderRe is a placeholder that is the whole value
// (`<IMAGE1_NAME>`, `#{Image}`, `__IMAGE__`), which the chart refuses to
// render as long as the value to fill still holds it.
var wholeVarRe = regexp.MustCompile(`^\$\{[^}]*\}$`)

var wholePlaceholderRe = regexp.MustCompile(`^(<[^<>]+>|#\{[^}]*\}|__[A-Z0-9_]+__)$`)

// isPlaceholder reports whether an image is a CI placeholder
// (`<IMAGE1_NAME>`, `#{Image}`, `{{ .Image }}`, `__IMAGE__`) rather than
// an image.
func isPlaceholder(image string) bool { return placeholderRe.MatchString(image) }

// stateful are images of backing services that keep state; on Kubernetes
// they are better served by a managed service.
var stateful = map[string]struct {
	port    int32
	managed string
}{
	"postgres":                     {5432, "Amazon RDS or Aurora PostgreSQL"},
	"postgis/postgis":              {5432, "Amazon RDS for PostgreSQL (PostGIS)"},
	"mysql":                        {3306, "Amazon RDS or Aurora MySQL"},
	"mariadb":                      {3306, "Amazon RDS for MariaDB"},
	"redis":                        {6379, "Amazon ElastiCache"},
	"valkey/valkey":                {6379, "Amazon ElastiCache"},
	"memcached":                    {11211, "Amazon ElastiCache for Memcached"},
	"mongo":                        {27017, "Amazon DocumentDB or MongoDB Atlas"},
	"rabbitmq":                     {5672, "Amazon MQ for RabbitMQ"},
	"elasticsearch":                {9200, "Amazon OpenSearch Service"},
	"opensearchproject/opensearch": {9200, "Amazon OpenSearch Service"},
	"bitnami/kafka":                {9092, "Amazon MSK"},
	"confluentinc/cp-kafka":        {9092, "Amazon MSK"},
	"zookeeper":                    {2181, "Amazon MSK (no ZooKeeper to run)"},
	"minio/minio":                  {9000, "Amazon S3"},
}

// imageRepo returns an image's repository without registry, tag and
// digest, and "library/" for Docker Hub official images.
func imageRepo(image string) string {
	if i := strings.Index(image, "@"); i >= 0 {
		image = image[:i]
	}
	if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		image = image[:i]
	}
	parts := strings.Split(image, "/")
	if len(parts) > 1 && (strings.ContainsAny(parts[0], ".:") || parts[0] == "localhost") {
		parts = parts[1:]
	}
	repo := strings.Join(parts, "/")
	return strings.TrimPrefix(repo, "library/")
}

func (cv *conv) image(t *ftrack, c *service.Container, cref string, sc types.ServiceConfig, main bool) {
	valueName := "image"
	if !main {
		valueName = service.FillKey("image", c.Name)
	}
	target := "values fill." + valueName
	_, refErr := reference.ParseNormalizedNamed(sc.Image)
	if sc.Build != nil {
		cv.buildArgs(t, sc.Build.Args)
	}
	switch {
	case sc.Image == "" && sc.Build != nil:
		ctxDir := sc.Build.Context
		if ctxDir != "" {
			ctxDir = cv.pr.displayPath(ctxDir)
		}
		c.ImageValue = cv.svc.AddValue(valueName, "", fmt.Sprintf("compose builds this image from %s: build it in CI, push it to a registry the cluster pulls from (ECR), and fill its reference", ctxDir))
		t.Fill("build", target, fmt.Sprintf("no image, only a build context (%s): build and push the image in CI, then fill its reference", ctxDir))
		return
	case hasSentinel(sc.Image):
		// No default: "app:${TAG}" would render as it is, an image no
		// registry has, where an empty value makes the chart refuse.
		def := restoreVars(sc.Image)
		keep := ""
		if wholeVarRe.MatchString(def) {
			keep = def // "${IMAGE}": the chart refuses it as it is
		}
		c.ImageValue = cv.svc.AddValue(valueName, keep, fmt.Sprintf("the image %s %s", def, cv.varsWhy(sc.Image)))
		t.Fill("image", target, cv.varsWhy(sc.Image)+": fill the image reference")
	case isPlaceholder(sc.Image):
		def := ""
		if wholePlaceholderRe.MatchString(sc.Image) {
			// The chart refuses a value still equal to such a
			// placeholder; one inside an image name it would render.
			def = sc.Image
		}
		c.ImageValue = cv.svc.AddValue(valueName, def, "the input has a CI placeholder, not an image: "+sc.Image)
		t.Fill("image", target, "CI placeholder "+sc.Image+": fill the image reference your pipeline produces")
	case refErr != nil:
		// apache/airflow's "${AIRFLOW_IMAGE_NAME:-apache/airflow:|version|}":
		// a template marker its docs substitute; as it is, every pod
		// would fail with InvalidImageName.
		c.ImageValue = cv.svc.AddValue(valueName, "", fmt.Sprintf("the input's image %s is not a valid image reference", sc.Image))
		t.Fill("image", target, fmt.Sprintf("%s is not a valid image reference (%v): fill the image reference", sc.Image, refErr))
	case sc.Build != nil && !strings.Contains(sc.Image, "/"):
		// compose builds and tags the image locally ("api-seed:dev"); a
		// cluster can pull it only once it is pushed to a registry under
		// another name. A repository ("ninech/netbox", "ghcr.io/x/y") is
		// one the cluster can pull: it stays, below.
		c.ImageValue = cv.svc.AddValue(valueName, "", "compose builds "+sc.Image+" locally: push it to a registry the cluster pulls from (ECR) and fill the full reference")
		t.Fill("image", target, sc.Image+" is a local tag of an image compose builds: push it to a registry and fill the reference")
	default:
		c.Image = sc.Image
		switch {
		case strings.Contains(sc.Image, "@sha256:"):
			t.Mapped("image", cref+".image")
		case !hasTag(sc.Image) || strings.HasSuffix(sc.Image, ":latest"):
			t.Warn("image", cref+".image", "no tag or :latest: pin a version (or a digest) so every pod runs the same image and rollbacks mean something")
		default:
			t.Mapped("image", cref+".image")
		}
		if st, ok := stateful[imageRepo(sc.Image)]; ok && main {
			cv.svc.Report.Warn(t.File("image"), t.Line("image"), "services."+sc.Name+".image", "",
				fmt.Sprintf("%s keeps state: running it as a Deployment is fine for tests, not for production data; consider %s and point the other services at it", imageRepo(sc.Image), st.managed))
		}
	}
	if sc.Build != nil && t.Has("image") {
		if c.Image != "" {
			// netbox: "ninech/netbox:${VERSION-latest}" names a
			// repository the cluster can pull from.
			t.Warn("build", cref+".image", fmt.Sprintf("compose also builds this image (from %s) and tags it %s; cutover does not build images: the chart pulls %s, so push the build there from CI (or change the value)", cv.pr.displayPath(sc.Build.Context), c.Image, c.Image))
		} else {
			t.Warn("build", target, "cutover does not build images: build this context in CI, push the image and fill the value")
		}
	}
	if sc.PullPolicy != "" {
		switch sc.PullPolicy {
		case "always":
			t.Mapped("pull_policy", cref+".imagePullPolicy Always")
		case "missing", "if_not_present":
			t.Mapped("pull_policy", cref+".imagePullPolicy IfNotPresent")
		case "never":
			t.Mapped("pull_policy", cref+".imagePullPolicy Never")
		default:
			t.Drop("pull_policy", "the image is pulled from a registry on Kubernetes; "+sc.PullPolicy+" has no counterpart")
		}
	}
}

// buildArgs reports the build args that use a secret-looking variable.
// cutover builds no image, so no build arg reaches the chart; but a
// secret passed as one is in the image's history for anyone who pulls it.
func (cv *conv) buildArgs(t *ftrack, args types.MappingWithEquals) {
	paths, _ := t.keyed("build.args", entryKey)
	for _, k := range service.SortedKeys(args) {
		v := args[k]
		if v == nil || !withheldIn(cv.pr.ip, *v) {
			continue
		}
		it, found := paths[k]
		tr, field := t.at(it, found, "build.args")
		_, secret := cv.pr.ip.split(sentinelVars(*v))
		tr.Warn(field, "", fmt.Sprintf("uses %s, which looks like a secret: the value was not copied; when CI builds the image, pass it as a build secret (docker build --secret), not a build arg, which stays in the image's history", varList(secret)))
	}
}

func hasTag(image string) bool {
	i := strings.LastIndex(image, ":")
	return i > strings.LastIndex(image, "/")
}

// command maps entrypoint (→ command) or command (→ args). Unset variables
// become $(VAR) references to an env var the user fills, which Kubernetes
// expands; a literal $( is escaped so Kubernetes leaves it alone.
func (cv *conv) command(t *ftrack, c *service.Container, field, target string, cmd types.ShellCommand) []string {
	if cmd == nil {
		return nil
	}
	if len(cmd) == 0 {
		what := "ENTRYPOINT"
		if field == "command" {
			what = "CMD"
		}
		t.Warn(field, target, "compose cleared the image's "+what+"; Kubernetes treats an empty list as not set and keeps it")
		return nil
	}
	out := make([]string, len(cmd))
	var vars []string
	for i, a := range cmd {
		a = strings.ReplaceAll(a, "$(", "$$(")
		vars = append(vars, sentinelVars(a)...)
		out[i] = replaceVars(a, func(name string) string { return "$(" + name + ")" })
	}
	if len(vars) > 0 {
		for _, v := range vars {
			cv.varEnv(c, v)
		}
		unset, secret := cv.pr.ip.split(vars)
		var msgs []string
		if len(unset) > 0 {
			msgs = append(msgs, fmt.Sprintf("uses %s, which is not set: became $(VAR) references to env vars you fill", varList(unset)))
		}
		if len(secret) > 0 {
			msgs = append(msgs, cv.withheldMsg(secret, "$(VAR) references"))
		}
		if len(unset) > 0 {
			t.Fill(field, target, strings.Join(msgs, "; "))
		} else {
			t.Warn(field, target, strings.Join(msgs, "; "))
		}
		return out
	}
	t.Mapped(field, target)
	return out
}

// withheldMsg says what became of secret-looking variables a field
// interpolated: refs names what stands in their place.
func (cv *conv) withheldMsg(vars []string, refs string) string {
	return fmt.Sprintf("uses %s, which looks like a secret: the value was not copied; became %s to env vars the container reads from AWS Secrets Manager secret %s/%s (store it there)", varList(vars), refs, cv.pr.name, cv.svc.Name)
}

// varsWhy says why a field that cannot refer to an env var (an image, a
// label) did not get its value: the variables it uses that are not set,
// and those that look like secrets, whose values are never copied into
// the chart.
func (cv *conv) varsWhy(s string) string {
	unset, secret := cv.pr.ip.split(sentinelVars(s))
	var why []string
	if len(unset) > 0 {
		why = append(why, fmt.Sprintf("uses %s, which is not set", varList(unset)))
	}
	if len(secret) > 0 {
		why = append(why, fmt.Sprintf("uses %s, which looks like a secret, so its value was not copied (this field cannot read a Secret)", varList(secret)))
	}
	return strings.Join(why, "; ")
}

// leftOut is the report message of a field left out because of the
// variables s uses: why, what applies instead, and, when only unset
// variables are to blame, how to get it (retry, "" for none). A secret
// stays out however often one converts: the field is for the user to set
// by hand, without it.
func (cv *conv) leftOut(s, instead, retry string) string {
	msg := cv.varsWhy(s) + ": " + instead
	if _, secret := cv.pr.ip.split(sentinelVars(s)); len(secret) > 0 {
		return msg + "; set it by hand without the secret if the service needs it"
	}
	if retry != "" {
		msg += "; " + retry
	}
	return msg
}

// varEnv gives the container an env var holding an unset variable (a
// value to fill) or a withheld secret (from Secrets Manager), for $(VAR)
// and shell references.
func (cv *conv) varEnv(c *service.Container, name string) {
	for _, e := range c.Env {
		if e.Name == name {
			return
		}
	}
	if cv.pr.ip.withheld[name] {
		c.Env = append(c.Env, service.EnvVar{Name: name, Secret: cv.secretRef(name)})
		return
	}
	u := cv.pr.ip.unset[name]
	reason := fmt.Sprintf("variable %s is not set in the environment or .env", name)
	if u != nil && u.Message != "" {
		reason += ": " + u.Message
	}
	c.Env = append(c.Env, service.EnvVar{Name: name, ValueRef: cv.svc.AddValue(service.FillKey("env", name), "", reason)})
}

// user maps user: "uid[:gid]". Kubernetes takes numeric ids only.
func (cv *conv) user(t *ftrack, c *service.Container, cref, u string) {
	if u == "" {
		return
	}
	if hasSentinel(u) {
		t.Warn("user", "", cv.leftOut(u, "the chart's default user runs it", ""))
		return
	}
	uid, gid, hasGid := strings.Cut(u, ":")
	var msgs []string
	if n, err := strconv.ParseInt(uid, 10, 64); err == nil {
		c.RunAsUser = &n
		if n == 0 {
			msgs = append(msgs, "runs as root: the restricted Pod Security Standard refuses it")
		}
	} else {
		c.UserName = uid
		msgs = append(msgs, fmt.Sprintf("user %q is a name: Kubernetes needs a numeric runAsUser (look it up in the image's /etc/passwd); the chart's default user runs it until then", uid))
	}
	if hasGid {
		if n, err := strconv.ParseInt(gid, 10, 64); err == nil {
			c.RunAsGroup = &n
		} else {
			msgs = append(msgs, fmt.Sprintf("group %q is a name: set a numeric runAsGroup", gid))
		}
	}
	target := cref + ".securityContext.runAsUser"
	if c.RunAsGroup != nil {
		target += ", runAsGroup"
	}
	if c.RunAsUser == nil && c.RunAsGroup == nil {
		target = ""
	}
	if len(msgs) > 0 {
		t.Warn("user", target, strings.Join(msgs, "; "))
		return
	}
	t.Mapped("user", target)
}

func capNames(caps []string) []string {
	out := make([]string, len(caps))
	for i, c := range caps {
		out[i] = strings.TrimPrefix(strings.ToUpper(c), "CAP_")
	}
	return out
}

// resources maps deploy.resources and the older mem_limit, cpus, … keys.
func (cv *conv) resources(t *ftrack, c *service.Container, cref string, sc types.ServiceConfig) {
	r := &c.Resources
	if d := sc.Deploy; d != nil {
		if l := d.Resources.Limits; l != nil {
			if l.NanoCPUs > 0 {
				r.CPULimit = cpuQuantity(float64(l.NanoCPUs))
				t.Mapped("deploy.resources.limits.cpus", cref+".resources.limits.cpu "+r.CPULimit)
			}
			if l.MemoryBytes > 0 {
				r.MemoryLimit = memQuantity(int64(l.MemoryBytes))
				t.Mapped("deploy.resources.limits.memory", cref+".resources.limits.memory "+r.MemoryLimit)
			}
			if l.Pids > 0 {
				t.Drop("deploy.resources.limits.pids", "the pid limit is a node setting on Kubernetes (kubelet podPidsLimit)")
			}
		}
		if rs := d.Resources.Reservations; rs != nil {
			if rs.NanoCPUs > 0 {
				r.CPURequest = cpuQuantity(float64(rs.NanoCPUs))
				t.Mapped("deploy.resources.reservations.cpus", cref+".resources.requests.cpu "+r.CPURequest)
			}
			if rs.MemoryBytes > 0 {
				r.MemoryRequest = memQuantity(int64(rs.MemoryBytes))
				t.Mapped("deploy.resources.reservations.memory", cref+".resources.requests.memory "+r.MemoryRequest)
			}
			if len(rs.Devices) > 0 {
				t.Warn("deploy.resources.reservations.devices", "", "devices (GPUs) come from a device plugin on Kubernetes: request nvidia.com/gpu and schedule on a GPU node pool by hand")
			}
			if len(rs.GenericResources) > 0 {
				t.Drop("deploy.resources.reservations.generic_resources", "swarm generic resources: use extended resources of a device plugin")
			}
		}
	}
	if sc.CPUS > 0 && r.CPULimit == "" {
		r.CPULimit = cpuQuantity(float64(sc.CPUS))
		t.Mapped("cpus", cref+".resources.limits.cpu "+r.CPULimit)
	} else if sc.CPUS > 0 {
		t.Use("cpus")
	}
	if sc.CPUQuota > 0 && r.CPULimit == "" {
		period := sc.CPUPeriod
		if period == 0 {
			period = 100000
		}
		r.CPULimit = cpuQuantity(float64(sc.CPUQuota) / float64(period))
		t.Mapped("cpu_quota", cref+".resources.limits.cpu "+r.CPULimit)
		if t.Has("cpu_period") {
			t.Mapped("cpu_period", cref+".resources.limits.cpu "+r.CPULimit)
		}
	}
	if sc.MemLimit > 0 && r.MemoryLimit == "" {
		r.MemoryLimit = memQuantity(int64(sc.MemLimit))
		t.Mapped("mem_limit", cref+".resources.limits.memory "+r.MemoryLimit)
	} else if sc.MemLimit > 0 {
		t.Use("mem_limit")
	}
	if sc.MemReservation > 0 && r.MemoryRequest == "" {
		r.MemoryRequest = memQuantity(int64(sc.MemReservation))
		t.Mapped("mem_reservation", cref+".resources.requests.memory "+r.MemoryRequest)
	}
	if sc.CPUShares > 0 && r.CPURequest == "" {
		r.CPURequest = cpuQuantity(float64(sc.CPUShares) / 1024)
		t.Warn("cpu_shares", cref+".resources.requests.cpu "+r.CPURequest, "cpu_shares is a relative weight (1024 = one CPU's share); the request is that many CPUs, check it against real usage")
	}
}

// cpuQuantity writes a CPU count as a Kubernetes quantity: "500m", "2".
func cpuQuantity(cpus float64) string {
	m := int64(math.Round(cpus * 1000))
	if m <= 0 {
		m = 1
	}
	if m%1000 == 0 {
		return strconv.FormatInt(m/1000, 10)
	}
	return strconv.FormatInt(m, 10) + "m"
}

// memQuantity writes bytes as a Kubernetes quantity in the largest binary
// unit that divides it: "512Mi", "2Gi".
func memQuantity(b int64) string {
	for _, u := range []struct {
		suffix string
		size   int64
	}{{"Ti", 1 << 40}, {"Gi", 1 << 30}, {"Mi", 1 << 20}, {"Ki", 1 << 10}} {
		if b >= u.size && b%u.size == 0 {
			return strconv.FormatInt(b/u.size, 10) + u.suffix
		}
	}
	return strconv.FormatInt(b, 10)
}
