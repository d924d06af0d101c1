package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// AlertmanagerSender posts to Alertmanager's v2 API (POST /api/v2/alerts).
type AlertmanagerSender struct {
	Client *http.Client
	// BaseURL is Alertmanager's URL, e.g. http://127.0.0.1:9093.
	BaseURL string
}

// Target returns "alertmanager".
func (*AlertmanagerSender) Target() string { return "alertmanager" }

// Endpoint returns the alerts URL.
func (s *AlertmanagerSender) Endpoint() string {
	return strings.TrimRight(s.BaseURL, "/") + "/api/v2/alerts"
}

// postableAlert is Alertmanager's v2 PostableAlert.
type postableAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	StartsAt     string            `json:"startsAt,omitempty"`
	EndsAt       string            `json:"endsAt,omitempty"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// Send posts the alerts.
func (s *AlertmanagerSender) Send(ctx context.Context, alerts []Alert) error {
	body := make([]postableAlert, 0, len(alerts))
	for _, a := range alerts {
		pa := postableAlert{Labels: a.Labels, Annotations: a.Annotations, StartsAt: a.StartsAt.Format(time.RFC3339Nano)}
		if a.Resolved() {
			pa.EndsAt = a.EndsAt.Format(time.RFC3339Nano)
		}
		body = append(body, pa)
	}
	return postJSON(ctx, s.Client, s.Endpoint(), body, nil)
}

// WebhookSender posts a generic JSON document to a URL.
type WebhookSender struct {
	Client *http.Client
	URL    string
	// Signer, if set, signs each request (each attempt anew, so a retry carries a fresh
	// timestamp).
	Signer *Signer
}

// Target returns "webhook".
func (*WebhookSender) Target() string { return "webhook" }

// Endpoint returns the URL.
func (s *WebhookSender) Endpoint() string { return s.URL }

// WebhookPayload is the body of a webhook request (README.md documents it).
type WebhookPayload struct {
	Version string         `json:"version"`
	Sender  string         `json:"sender"`
	Alerts  []WebhookAlert `json:"alerts"`
}

// WebhookAlert is one alert in a webhook request.
type WebhookAlert struct {
	// Status is firing or resolved.
	Status      string            `json:"status"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    string            `json:"starts_at"`
	EndsAt      string            `json:"ends_at,omitempty"`
}

// Send posts the alerts.
func (s *WebhookSender) Send(ctx context.Context, alerts []Alert) error {
	p := WebhookPayload{Version: "1", Sender: "buildmon", Alerts: make([]WebhookAlert, 0, len(alerts))}
	for _, a := range alerts {
		wa := WebhookAlert{Status: "firing", Labels: a.Labels, Annotations: a.Annotations, StartsAt: a.StartsAt.Format(time.RFC3339Nano)}
		if a.Resolved() {
			wa.Status, wa.EndsAt = "resolved", a.EndsAt.Format(time.RFC3339Nano)
		}
		p.Alerts = append(p.Alerts, wa)
	}
	return postJSON(ctx, s.Client, s.URL, p, s.Signer)
}

func postJSON(ctx context.Context, client *http.Client, url string, v any, signer *Signer) error {
	b, err := json.Marshal(v)
	if err != nil {
		return &PermanentError{Err: fmt.Errorf("encoding notification: %w", err)}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return &PermanentError{Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	if signer != nil {
		signer.Sign(req.Header, b)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("posting to %s: %w", url, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return fmt.Errorf("posting to %s: %s: %s", url, resp.Status, strings.TrimSpace(string(msg)))
	default:
		return &PermanentError{Err: fmt.Errorf("posting to %s: %s: %s", url, resp.Status, strings.TrimSpace(string(msg)))}
	}
}
