package source

import "testing"

// TestSecretURL: a webhook URL carries its token and was copied into
// ConfigMaps as plain configuration (SLACK_WEBHOOK_URL); a URL with a
// password is a secret whatever its name; other URLs are configuration.
func TestSecretURL(t *testing.T) {
	for _, c := range []struct {
		name, value string
		want        bool
	}{
		{"SLACK_WEBHOOK_URL", "https://hooks.slack.com/services/T000/B000/XXXX", true},
		{"ALERTS", "https://hooks.slack.com/services/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", true},
		{"NOTIFY_URL", "https://discord.com/api/webhooks/1234567890/AbCdEfGhIjKlMnOp", true},
		{"TEAMS_URL", "https://contoso.webhook.office.com/webhookb2/a1b2c3d4@e5f6/IncomingWebhook/0a1b/c2d3", true},
		{"CHAT_URL", "https://chat.googleapis.com/v1/spaces/AAAA1234/messages?key=AIzaSyDd&token=x1y2", true},
		{"ORDER_WEBHOOK_URL", "https://hooks.example.com/orders/9f8e7d6c5b4a", true},
		{"PSP_WEBHOOK", "https://pay.example.com/hook?sig=5c0ffee5c0ffee", true},
		{"DATABASE_URL", "postgres://app:hunter2@db:5432/app", true},
		{"REDIS_URL", "redis://:hunter2@cache:6379", true},

		{"ORDER_WEBHOOK_URL", "https://hooks.example.com/orders", false},
		{"WEBHOOK_PATH", "/webhooks/psp", false},
		{"API_URL", "https://api.example.com/v2/orders/123", false},
		{"ORDER_WEBHOOK_URL", "https://api.example.com/v2/webhooks", false},
		{"SLACK_CHANNEL", "#billing", false},
		{"SLACK_API", "https://slack.com/api", false},
		{"DATABASE_URL", "postgres://db:5432/app", false},
		{"DISCORD_URL", "https://discord.com/invite/abc", false},
	} {
		if got := SecretURL(c.name, c.value); got != c.want {
			t.Errorf("SecretURL(%q, %q) = %v, want %v", c.name, c.value, got, c.want)
		}
	}
	for name, want := range map[string]bool{
		"SLACK_WEBHOOK_URL": true, "DISCORD_WEBHOOK": true, "teamsWebhookUri": true,
		"WEBHOOK_TIMEOUT": false, "WEBHOOK_ENABLED": false, "LOG_LEVEL": false,
	} {
		if got := WebhookName(name); got != want {
			t.Errorf("WebhookName(%q) = %v, want %v", name, got, want)
		}
	}
}
