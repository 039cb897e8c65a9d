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
	} {
		if got := secretLooking(c.name, c.value); got != c.want {
			t.Errorf("secretLooking(%q, %q) = %v, want %v", c.name, c.value, got, c.want)
		}
	}
}
