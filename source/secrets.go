package source

import (
	"net/url"
	"regexp"
	"strings"
)

// What every importer's secret heuristics share: values that are a
// credential whatever the variable's name. Each importer keeps its own
// name rules (its format's conventions differ), and asks SecretURL first.

var (
	// urlPasswordRE matches a URL with a password in it:
	// postgres://app:pw@db/app, redis://:pw@cache:6379.
	urlPasswordRE = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*://[^/:@\s]*:[^/@\s]+@`)
	// webhookNameRE matches variables whose name mentions a webhook
	// (SLACK_WEBHOOK_URL, DISCORD_WEBHOOK, TeamsWebhookUri), and
	// webhookURLNameRE those whose name says they hold its URL.
	webhookNameRE    = regexp.MustCompile(`(?i)web_?hook`)
	webhookURLNameRE = regexp.MustCompile(`(?i)web_?hooks?(_?(url|uri|endpoint)s?)?$`)
	// tokenCharsRE matches what a token in a URL is made of.
	tokenCharsRE = regexp.MustCompile(`^[A-Za-z0-9_\-.~]+$`)
)

// webhookHosts are services whose webhook URLs carry the token that lets
// anyone post to them, by host suffix and the path they start with.
var webhookHosts = []struct{ host, path string }{
	{"hooks.slack.com", "/"},
	{"discord.com", "/api/webhooks/"},
	{"discordapp.com", "/api/webhooks/"},
	{"webhook.office.com", "/"},
	{"outlook.office.com", "/webhook"},
	{"outlook.office365.com", "/webhook"},
	{"logic.azure.com", "/workflows/"},
	{"chat.googleapis.com", "/v1/spaces/"},
	{"hooks.zapier.com", "/hooks/"},
	{"maker.ifttt.com", "/trigger/"},
	{"api.telegram.org", "/bot"},
}

// URLHasPassword reports whether value is a URL with a password in it.
func URLHasPassword(value string) bool { return urlPasswordRE.MatchString(strings.TrimSpace(value)) }

// SecretURL reports whether value is a URL that is itself a credential,
// so that it must become a secret reference and never be copied: a URL
// with a password in it, or a webhook URL, whose path or query is the
// token that lets anyone post to it
// (https://hooks.slack.com/services/T000/B000/XXXX). A webhook is known by
// its host (Slack, Discord, Microsoft Teams, Google Chat, Zapier, IFTTT,
// Telegram) or, on any host, by a variable name that says webhook and a
// token in the URL's path or query.
func SecretURL(name, value string) bool {
	value = strings.TrimSpace(value)
	if urlPasswordRE.MatchString(value) {
		return true
	}
	u, err := url.Parse(value)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return false
	}
	host := strings.ToLower(u.Hostname())
	path := strings.TrimRight(u.EscapedPath(), "/")
	for _, w := range webhookHosts {
		if (host == w.host || strings.HasSuffix(host, "."+w.host)) && strings.HasPrefix(path+"/", w.path) && len(path) > len(strings.TrimRight(w.path, "/")) {
			return true
		}
	}
	if !webhookNameRE.MatchString(name) {
		return false
	}
	for _, seg := range strings.Split(path, "/") {
		if token(seg) {
			return true
		}
	}
	for _, vs := range u.Query() {
		for _, v := range vs {
			if token(v) {
				return true
			}
		}
	}
	return false
}

// token reports whether a path segment or query value is a token rather
// than a word or a version (v2): four characters or more with a digit, or
// sixteen or more.
func token(s string) bool {
	if !tokenCharsRE.MatchString(s) {
		return false
	}
	return len(s) >= 16 || len(s) >= 4 && strings.ContainsAny(s, "0123456789")
}

// WebhookName reports whether a variable's name says it holds a webhook
// URL: when its value is unknown (a variable the deployment sets), what
// will be filled in is a credential, as a connection URL's is.
func WebhookName(name string) bool { return webhookURLNameRE.MatchString(name) }

// secretNameRE matches variable names of the usual secrets of env files
// and units: DB_PASSWORD, STRIPE_API_KEY, SESSION_SECRET, SENTRY_DSN.
var secretNameRE = regexp.MustCompile(`(?i)(passw(or)?d|passwd|_pass$|^pass$|secret|token|api_?key|private_?key|access_?key|credential|auth_?key|signing_?key|encryption_?key|_salt$|^salt$|dsn$)`)

// SecretName reports whether a variable's name says it holds a secret
// (the importers of env files, compose and systemd, first rule out names
// that say where a secret is: DB_PASSWORD_FILE).
func SecretName(name string) bool { return secretNameRE.MatchString(name) }

// SecretValue reports whether a variable holds a secret whatever else its
// name says: its value is a SecretURL, or its value is not known ("", to
// be given when the service runs) and its name says it holds a webhook's
// URL.
func SecretValue(name, value string) bool {
	return SecretURL(name, value) || value == "" && WebhookName(name)
}
