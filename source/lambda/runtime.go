package lambda

import (
	"fmt"
	"regexp"
	"strings"
)

// runtimeInfo says what a Lambda managed runtime becomes: the AWS base
// image its code must be built on, and whether AWS still supports it.
type runtimeInfo struct {
	// BaseImage is the AWS Lambda base image of the runtime; it contains
	// /lambda-entrypoint.sh and the runtime interface client.
	BaseImage string
	// Deprecated is non-empty when AWS no longer patches the runtime; it
	// says what to move to.
	Deprecated string
}

// Runtime identifiers follow a few families; a pattern rather than a
// fixed list, so a runtime AWS releases next month is not an error.
var runtimePatterns = []struct {
	re    *regexp.Regexp
	image func(m []string) string
}{
	{regexp.MustCompile(`^nodejs(\d+)\.x$`), func(m []string) string { return "public.ecr.aws/lambda/nodejs:" + m[1] }},
	{regexp.MustCompile(`^nodejs(4\.3|6\.10|8\.10|4\.3-edge)?$`), func([]string) string { return "public.ecr.aws/lambda/nodejs:22" }},
	{regexp.MustCompile(`^python(2\.7|3\.\d{1,2})$`), func(m []string) string { return "public.ecr.aws/lambda/python:" + m[1] }},
	{regexp.MustCompile(`^java(\d{1,2})(\.al2)?$`), func(m []string) string { return "public.ecr.aws/lambda/java:" + m[1] + m[2] }},
	{regexp.MustCompile(`^dotnet(\d{1,2})$`), func(m []string) string { return "public.ecr.aws/lambda/dotnet:" + m[1] }},
	{regexp.MustCompile(`^dotnetcore(\d\.\d)$`), func(m []string) string { return "public.ecr.aws/lambda/dotnet:core" + m[1] }},
	{regexp.MustCompile(`^ruby(\d\.\d)$`), func(m []string) string { return "public.ecr.aws/lambda/ruby:" + m[1] }},
	{regexp.MustCompile(`^go1\.x$`), func([]string) string { return "public.ecr.aws/lambda/provided:al2023" }},
	{regexp.MustCompile(`^provided(\.al2|\.al2023)?$`), func(m []string) string {
		if m[1] == "" {
			return "public.ecr.aws/lambda/provided:alami"
		}
		return "public.ecr.aws/lambda/provided:" + strings.TrimPrefix(m[1], ".")
	}},
}

// deprecatedRuntimes are runtimes past AWS's deprecation date (Lambda
// runtime deprecation policy), with what to move to.
var deprecatedRuntimes = map[string]string{
	"nodejs": "nodejs22.x", "nodejs4.3": "nodejs22.x", "nodejs4.3-edge": "nodejs22.x", "nodejs6.10": "nodejs22.x",
	"nodejs8.10": "nodejs22.x", "nodejs10.x": "nodejs22.x", "nodejs12.x": "nodejs22.x", "nodejs14.x": "nodejs22.x",
	"nodejs16.x": "nodejs22.x", "nodejs18.x": "nodejs22.x",
	"python2.7": "python3.13", "python3.6": "python3.13", "python3.7": "python3.13", "python3.8": "python3.13",
	"java8": "java21 (or java8.al2)", "dotnetcore1.0": "dotnet8", "dotnetcore2.0": "dotnet8", "dotnetcore2.1": "dotnet8",
	"dotnetcore3.1": "dotnet8", "dotnet6": "dotnet8", "dotnet5.0": "dotnet8",
	"ruby2.5": "ruby3.3", "ruby2.7": "ruby3.3",
	"go1.x": "provided.al2023 with a bootstrap binary", "provided": "provided.al2023",
}

// lookupRuntime returns what a runtime identifier becomes, or an error
// for an identifier that is not a Lambda runtime.
func lookupRuntime(id string) (runtimeInfo, error) {
	for _, p := range runtimePatterns {
		if m := p.re.FindStringSubmatch(id); m != nil {
			return runtimeInfo{BaseImage: p.image(m), Deprecated: deprecatedRuntimes[id]}, nil
		}
	}
	return runtimeInfo{}, fmt.Errorf("%q is not a Lambda runtime (nodejs22.x, python3.12, java21, dotnet8, ruby3.3, provided.al2023, …)", id)
}
