package checkpointexporter // import "github.com/buildmon/buildmon/exporter/checkpointexporter"

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configretry"

	"github.com/buildmon/buildmon/exporter/checkpointexporter/internal/notify"
	"github.com/buildmon/buildmon/internal/access"
)

// Config is the configuration of the checkpoint exporter. README.md documents every key.
type Config struct {
	// Directory holds the checkpoints, reports and (by default) the audit log. A relative
	// path is relative to the collector's working directory.
	Directory string `mapstructure:"directory"`
	// Interval is how often a changed state is checkpointed; a phase or build that ends
	// triggers a checkpoint at once.
	Interval time.Duration `mapstructure:"interval"`
	// Generations is how many checkpoint files are kept.
	Generations int `mapstructure:"generations"`
	// MaxBuilds bounds the builds (and hosts) held in the state.
	MaxBuilds int `mapstructure:"max_builds"`
	// AlertStaleAfter is how long a host alert (or an alert of a finished build) stays
	// active when the processor stops reporting it.
	AlertStaleAfter time.Duration `mapstructure:"alert_stale_after"`

	Status       StatusConfig     `mapstructure:"status"`
	Encryption   EncryptionConfig `mapstructure:"encryption"`
	Retention    RetentionConfig  `mapstructure:"retention"`
	AuditLog     AuditLogConfig   `mapstructure:"audit_log"`
	Alertmanager NotifierConfig   `mapstructure:"alertmanager"`
	Webhook      NotifierConfig   `mapstructure:"webhook"`
}

// StatusConfig configures the status API server (endpoint, tls, auth, timeouts, … of
// confighttp) and its connection cap. An empty endpoint switches the API off.
type StatusConfig struct {
	confighttp.ServerConfig `mapstructure:",squash"`
	// MaxConnections caps the connections served at once; further connections wait in the
	// kernel's accept queue until one closes, so that a flood of (slow) clients cannot take
	// every file descriptor the checkpoints need. 0 sets no cap.
	MaxConnections int `mapstructure:"max_connections"`
	// Access grants subjects status:read and reports:read on pipelines and hosts; without
	// rules it is not checked.
	Access access.Config `mapstructure:"access"`
}

// accessEnv is what the status API offers access rules.
func (c *StatusConfig) accessEnv() access.Env {
	return access.Env{
		Prefix:      "status.access",
		Served:      []access.Action{access.StatusRead, access.ReportsRead},
		Auth:        c.Auth.HasValue(),
		ClientCerts: c.TLS.HasValue() && c.TLS.Get().ClientCAFile != "",
	}
}

// EncryptionKey names a key: a file or an environment variable holding 32 bytes as 64 hex
// digits or in base64.
type EncryptionKey struct {
	KeyFile string `mapstructure:"key_file"`
	KeyEnv  string `mapstructure:"key_env"`
}

// EncryptionConfig switches on AES-256-GCM encryption of checkpoints and reports when a key
// is set. PreviousKeys only decrypt, so that files written before a key rotation stay
// readable.
type EncryptionConfig struct {
	EncryptionKey `mapstructure:",squash"`
	PreviousKeys  []EncryptionKey `mapstructure:"previous_keys"`
}

// Enabled reports whether encryption is configured.
func (c EncryptionConfig) Enabled() bool { return c.KeyFile != "" || c.KeyEnv != "" }

// RetentionConfig bounds what is kept.
type RetentionConfig struct {
	// FinishedBuilds is how long a finished build and its reports are kept (0: forever).
	FinishedBuilds time.Duration `mapstructure:"finished_builds"`
	// MaxReportsBytes bounds the bytes of report files; past it the oldest finished builds
	// go (0: no bound).
	MaxReportsBytes int64 `mapstructure:"max_reports_bytes"`
}

// AuditLogConfig configures the audit log.
type AuditLogConfig struct {
	// Path of the log; default audit.log in the checkpoint directory.
	Path string `mapstructure:"path"`
	// MaxBytes rotates the log (keeping one previous file, <path>.1) at this size.
	MaxBytes int64 `mapstructure:"max_bytes"`
}

// NotifierConfig configures notifications to Alertmanager or a webhook (an HTTP client of
// confighttp: endpoint, timeout, headers, tls, auth, …). An empty endpoint switches it off.
type NotifierConfig struct {
	confighttp.ClientConfig `mapstructure:",squash"`
	// ResendInterval is how often firing alerts are sent again.
	ResendInterval time.Duration `mapstructure:"resend_interval"`
	// MinLevel is the lowest alert level notified: INFO, WARNING, ERROR or CRITICAL.
	MinLevel string `mapstructure:"min_level"`
	// QueueSize bounds the notifications waiting to be sent; past it the oldest is dropped.
	QueueSize int `mapstructure:"queue_size"`
	// RetryOnFailure configures the backoff of failed requests.
	RetryOnFailure configretry.BackOffConfig `mapstructure:"retry_on_failure"`
	// Signing signs the webhook's requests (webhook only; Alertmanager has its own auth).
	Signing SigningConfig `mapstructure:"signing"`
}

// SigningConfig is the HMAC-SHA256 signing of webhook requests. Secret signs; during a
// rotation PreviousSecret signs too, so the request carries both signatures and a receiver
// that knows either secret accepts it.
type SigningConfig struct {
	Secret         configopaque.String `mapstructure:"secret"`
	PreviousSecret configopaque.String `mapstructure:"previous_secret"`
}

// minSecretBytes is the shortest signing secret accepted: 128 bits.
const minSecretBytes = 16

// secrets returns the signing keys, the current one first; nil when signing is off.
func (c SigningConfig) secrets() [][]byte {
	if c.Secret == "" {
		return nil
	}
	out := [][]byte{[]byte(c.Secret)}
	if c.PreviousSecret != "" {
		out = append(out, []byte(c.PreviousSecret))
	}
	return out
}

func (c SigningConfig) validate(name string) []error {
	var errs []error
	if c.Secret == "" && c.PreviousSecret != "" {
		errs = append(errs, fmt.Errorf("%s.signing.previous_secret needs %s.signing.secret (the new secret, which signs first)", name, name))
	}
	if c.Secret != "" && len(c.Secret) < minSecretBytes {
		errs = append(errs, fmt.Errorf("%s.signing.secret must be at least %d bytes (e.g. openssl rand -hex 32)", name, minSecretBytes))
	}
	if c.PreviousSecret != "" && len(c.PreviousSecret) < minSecretBytes {
		errs = append(errs, fmt.Errorf("%s.signing.previous_secret must be at least %d bytes", name, minSecretBytes))
	}
	if c.Secret != "" && c.Secret == c.PreviousSecret {
		errs = append(errs, fmt.Errorf("%s.signing.previous_secret is the same as %s.signing.secret; leave it out when not rotating", name, name))
	}
	return errs
}

func (c *NotifierConfig) enabled() bool { return c.Endpoint != "" }

func (c *NotifierConfig) validate(name string) []error {
	if !c.enabled() {
		return nil
	}
	var errs []error
	if u, err := url.Parse(c.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("%s.endpoint %q must be an http or https URL", name, c.Endpoint))
	}
	if notify.LevelRank(c.MinLevel) == 0 {
		errs = append(errs, fmt.Errorf("%s.min_level %q must be INFO, WARNING, ERROR or CRITICAL", name, c.MinLevel))
	}
	if c.ResendInterval < 0 {
		errs = append(errs, fmt.Errorf("%s.resend_interval must not be negative", name))
	}
	if c.QueueSize < 1 {
		errs = append(errs, fmt.Errorf("%s.queue_size must be at least 1", name))
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("%s.timeout must not be negative", name))
	}
	errs = append(errs, c.Signing.validate(name)...)
	return errs
}

// Validate checks what can be checked without touching files or the environment (Start
// loads the keys and creates the directory).
func (cfg *Config) Validate() error {
	var errs []error
	if strings.TrimSpace(cfg.Directory) == "" {
		errs = append(errs, errors.New("directory must not be empty"))
	}
	if cfg.Interval <= 0 {
		errs = append(errs, errors.New("interval must be positive"))
	}
	if cfg.Generations < 1 {
		errs = append(errs, errors.New("generations must be at least 1"))
	}
	if cfg.MaxBuilds < 1 {
		errs = append(errs, errors.New("max_builds must be at least 1"))
	}
	if err := cfg.Status.Access.Validate(cfg.Status.accessEnv()); err != nil {
		errs = append(errs, err)
	}
	if cfg.Status.Access.Enabled() && cfg.Status.NetAddr.Endpoint == "" {
		errs = append(errs, errors.New("status.access.rules: status.endpoint is empty, so the status API is off and the rules never apply"))
	}
	if cfg.Status.MaxConnections < 0 {
		errs = append(errs, errors.New("status.max_connections must not be negative"))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"status.read_timeout", cfg.Status.ReadTimeout},
		{"status.read_header_timeout", cfg.Status.ReadHeaderTimeout},
		{"status.write_timeout", cfg.Status.WriteTimeout},
	} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s must not be negative", d.name))
		}
	}
	if cfg.AlertStaleAfter < 0 {
		errs = append(errs, errors.New("alert_stale_after must not be negative"))
	}
	enc := cfg.Encryption
	if enc.KeyFile != "" && enc.KeyEnv != "" {
		errs = append(errs, errors.New("encryption: set key_file or key_env, not both"))
	}
	if !enc.Enabled() && len(enc.PreviousKeys) > 0 {
		errs = append(errs, errors.New("encryption.previous_keys needs encryption.key_file or encryption.key_env (the current key)"))
	}
	for i, k := range enc.PreviousKeys {
		switch {
		case k.KeyFile == "" && k.KeyEnv == "":
			errs = append(errs, fmt.Errorf("encryption.previous_keys[%d] needs key_file or key_env", i))
		case k.KeyFile != "" && k.KeyEnv != "":
			errs = append(errs, fmt.Errorf("encryption.previous_keys[%d]: set key_file or key_env, not both", i))
		}
	}
	if cfg.Retention.FinishedBuilds < 0 {
		errs = append(errs, errors.New("retention.finished_builds must not be negative"))
	}
	if cfg.Retention.MaxReportsBytes < 0 {
		errs = append(errs, errors.New("retention.max_reports_bytes must not be negative"))
	}
	if cfg.AuditLog.MaxBytes < 0 {
		errs = append(errs, errors.New("audit_log.max_bytes must not be negative"))
	}
	errs = append(errs, cfg.Alertmanager.validate("alertmanager")...)
	if cfg.Alertmanager.Signing != (SigningConfig{}) {
		errs = append(errs, errors.New("alertmanager.signing: Alertmanager does not check signatures; use alertmanager.auth and alertmanager.tls (signing is for webhook)"))
	}
	errs = append(errs, cfg.Webhook.validate("webhook")...)
	return errors.Join(errs...)
}
