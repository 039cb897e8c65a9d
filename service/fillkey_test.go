package service

import "testing"

func TestFillKey(t *testing.T) {
	for _, c := range []struct {
		words []string
		want  string
	}{
		{[]string{"image"}, "image"},
		{[]string{"image", "otel-collector"}, "imageOtelCollector"},
		{[]string{"env", "DB_HOST"}, "envDbHost"},
		{[]string{"env", "dbHost"}, "envDbHost"},
		{[]string{"envFile", "worker.env"}, "envFileWorkerEnv"},
		{[]string{"roleArn", "staging"}, "roleArnStaging"},
		{[]string{"roleArn", "eu-prod"}, "roleArnEuProd"},
		{[]string{"secret", "DB_PASSWORD"}, "secretDbPassword"},
		{[]string{"env", "X1"}, "envX1"},
		{[]string{"env", "é"}, "env"},
		{[]string{"--"}, "value"},
	} {
		if got := FillKey(c.words...); got != c.want {
			t.Errorf("FillKey(%q) = %q, want %q", c.words, got, c.want)
		}
	}
}
