package lint

import "github.com/cutoverhq/cutover/render/helm"

// The layout is read and rendered by render/helm, as `cutover convert`
// wrote it; tests may replace these.
var (
	listServices = helm.Services
	listEnvs     = helm.Envs
	template     = helm.Template
)
