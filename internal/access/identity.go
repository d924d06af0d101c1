package access // import "github.com/buildmon/buildmon/internal/access"

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"

	"go.opentelemetry.io/collector/client"
)

// Identity is every name the subject of a request has; a rule that names one of them applies.
type Identity struct {
	// Names, the primary first: the authenticator's subject (or credential fingerprint),
	// then group:<g> for each group, then the client certificate's cn:, dns:, uri: and
	// email: names.
	Names []string
}

// Subject is the name the audit log and the errors give the subject: its primary name, or
// "anonymous" when it has none.
func (id Identity) Subject() string {
	if len(id.Names) == 0 {
		return "anonymous"
	}
	return id.Names[0]
}

// SubjectAttributes are the auth data attributes that name the authenticated subject, in
// order of preference ("subject" is what oidcauth and most authenticators set).
var SubjectAttributes = []string{"subject", "sub", "username", "user", "client_id", "email", "name"}

// groupsAttribute is the auth data attribute with the subject's groups (oidcauth sets it
// from its groups_claim).
const groupsAttribute = "membership"

// Prefixes of the names that do not come from the authenticator's subject. An authenticator
// subject that starts with one of them is not used, so that it cannot pass for a certificate
// name or a group.
const (
	prefixCN    = "cn:"
	prefixDNS   = "dns:"
	prefixURI   = "uri:"
	prefixEmail = "email:"
	prefixGroup = "group:"
)

var certPrefixes = []string{prefixCN, prefixDNS, prefixURI, prefixEmail}

// maxNames bounds the names taken from one request (a certificate may list many SANs).
const maxNames = 64

type kind int

const (
	kindAuth kind = iota // the authenticator's subject, fingerprint or group
	kindCert             // a verified client certificate's name
	kindAny              // a lone "*"
)

func subjectKind(pattern string) kind {
	if pattern == "*" {
		return kindAny
	}
	for _, p := range certPrefixes {
		if strings.HasPrefix(pattern, p) {
			return kindCert
		}
	}
	return kindAuth
}

func reserved(name string) bool {
	return subjectKind(name) == kindCert || strings.HasPrefix(name, prefixGroup)
}

// Identify returns the names of a request's subject: the subject the authenticator put into
// the request's client.Info (first of SubjectAttributes that is a non-empty string; for an
// authenticator that names none, such as bearertokenauth, authID + "/credential-sha256:" and
// 12 hex digits of the SHA-256 of the Authorization header, which tells tokens apart without
// revealing them), the groups of its "membership" attribute as group:<name>, and the names of
// a verified client certificate as cn:<common name>, dns:<SAN>, uri:<SAN>, email:<SAN>.
// authID is the authenticator's component id, "" when the API has no authenticator.
func Identify(r *http.Request, authID string) Identity {
	var names []string
	// bearertokenauth leaves client.Info's Auth unset: a request that passed it has an
	// authenticator but no auth data.
	auth := client.FromContext(r.Context()).Auth
	subject := ""
	if auth != nil {
		for _, a := range SubjectAttributes {
			if v, ok := auth.GetAttribute(a).(string); ok && v != "" {
				subject = v
				break
			}
		}
	}
	switch {
	case subject != "" && !reserved(subject):
		names = append(names, subject)
	case subject == "" && authID != "":
		if cred := r.Header.Get("Authorization"); cred != "" {
			names = append(names, CredentialSubject(authID, cred))
		}
	}
	if auth != nil {
		names = appendGroups(names, auth.GetAttribute(groupsAttribute))
	}
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0]) > 0 {
		leaf := r.TLS.VerifiedChains[0][0]
		if cn := leaf.Subject.CommonName; cn != "" {
			names = append(names, prefixCN+cn)
		}
		for _, d := range leaf.DNSNames {
			names = append(names, prefixDNS+d)
		}
		for _, u := range leaf.URIs {
			names = append(names, prefixURI+u.String())
		}
		for _, e := range leaf.EmailAddresses {
			names = append(names, prefixEmail+e)
		}
	}
	if len(names) > maxNames {
		names = names[:maxNames]
	}
	return Identity{Names: names}
}

// CredentialSubject is the subject of a credential when the authenticator names none.
func CredentialSubject(authID, credential string) string {
	sum := sha256.Sum256([]byte(credential))
	return authID + "/credential-sha256:" + hex.EncodeToString(sum[:6])
}

func appendGroups(names []string, v any) []string {
	switch g := v.(type) {
	case string:
		if g != "" {
			names = append(names, prefixGroup+g)
		}
	case []string:
		for _, s := range g {
			if s != "" && len(names) < maxNames {
				names = append(names, prefixGroup+s)
			}
		}
	case []any:
		for _, s := range g {
			if str, ok := s.(string); ok && str != "" && len(names) < maxNames {
				names = append(names, prefixGroup+str)
			}
		}
	}
	return names
}
