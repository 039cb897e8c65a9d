package lint

import (
	"context"

	"github.com/cutoverhq/cutover/render/helm"
)

// A layout is what `cutover convert` wrote with render/helm: its paths, its
// services and environments, and how one service renders in one
// environment all come from there, so lint reads exactly what Argo CD and
// `helm template` will.

// Layout paths, relative to the layout directory.
const (
	chartFile = helm.ChartDir + "/Chart.yaml"
	baseFile  = helm.BaseValuesFile
)

func envFile(env string) string     { return helm.EnvValuesFile(env) }
func serviceFile(svc string) string { return helm.ServiceValuesFile(svc) }

func listServices(dir string) ([]string, error) { return helm.Services(dir) }
func listEnvs(dir string) ([]string, error)     { return helm.Envs(dir) }

// template renders one service in one environment of the layout in dir.
func template(ctx context.Context, dir, svc, env string) ([]byte, error) {
	return helm.Template(ctx, dir, svc, env)
}
