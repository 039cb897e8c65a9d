package compose

import "testing"

// TestSecretLooking: names and values that hold a secret, and the ones
// that only say where a secret is.
func TestSecretLooking(t *testing.T) {
	for _, c := range []struct {
		name, value string
		want        bool
	}{
		{"DB_PASSWORD", "hunter2", true},
		{"STRIPE_API_KEY", "", true},
		{"DATABASE_URL", "postgres://app:hunter2@db/app", true},
		{"DATABASE_URL", "postgres://db/app", false},
		{"DB_PASSWORD_FILE", "/run/secrets/db-password", false},
		{"DATABASE_PASSWORD", "/run/secrets/db-password", false},
		{"DATABASE_PASSWORD", "/run/secrets/db password", true},
		{"AWS_ACCESS_KEY_ID", "AKIAEXAMPLE", true},
		{"LOG_LEVEL", "debug", false},
		// A webhook URL is its own token.
		{"SLACK_WEBHOOK_URL", "https://hooks.slack.com/services/T000/B000/XXXX", true},
		{"ALERT_WEBHOOK", "https://alerts.example.com/hooks/6f1c2b9e", true},
		{"SLACK_WEBHOOK_URL", "", true},
		{"ALERT_WEBHOOK", "https://alerts.example.com/hooks", false},
	} {
		if got := secretLooking(c.name, c.value); got != c.want {
			t.Errorf("secretLooking(%q, %q) = %v, want %v", c.name, c.value, got, c.want)
		}
	}
}
