// Package ci reads the identity of the running build (build id, pipeline, repository, branch,
// revision, worker) from the environment variables that GitHub Actions, GitLab CI, Buildkite
// and Jenkins set for every job.
package ci

import (
	"strings"
)

// System names the CI system a build runs under.
type System string

// The CI systems Detect recognizes.
const (
	None      System = ""
	GitHub    System = "github-actions"
	GitLab    System = "gitlab-ci"
	Buildkite System = "buildkite"
	Jenkins   System = "jenkins"
)

// Info is what the environment says about the running build. Empty fields are unknown.
type Info struct {
	System     System
	BuildID    string
	Pipeline   string
	Repository string
	Branch     string
	Revision   string
	Worker     string
}

// Detect reads Info from the environment through getenv. Variables set to the empty string
// count as absent. The first CI system whose build id variable is set wins, in the order
// GitHub Actions, GitLab CI, Buildkite, Jenkins; Jenkins comes last because its variable names
// (BUILD_NUMBER, JOB_NAME) are generic enough to appear elsewhere.
func Detect(getenv func(string) string) Info {
	get := func(key string) string { return strings.TrimSpace(getenv(key)) }
	switch {
	case get("GITHUB_RUN_ID") != "":
		return github(get)
	case get("CI_PIPELINE_ID") != "":
		return Info{
			System:     GitLab,
			BuildID:    SanitizeID("gitlab-" + get("CI_PIPELINE_ID")),
			Pipeline:   get("CI_PROJECT_PATH"),
			Repository: get("CI_PROJECT_URL"),
			Branch:     get("CI_COMMIT_REF_NAME"),
			Revision:   get("CI_COMMIT_SHA"),
			Worker:     get("CI_RUNNER_ID"),
		}
	case get("BUILDKITE_BUILD_ID") != "":
		return Info{
			System:     Buildkite,
			BuildID:    SanitizeID("buildkite-" + get("BUILDKITE_BUILD_ID")),
			Pipeline:   get("BUILDKITE_PIPELINE_SLUG"),
			Repository: get("BUILDKITE_REPO"),
			Branch:     get("BUILDKITE_BRANCH"),
			Revision:   get("BUILDKITE_COMMIT"),
			Worker:     get("BUILDKITE_AGENT_NAME"),
		}
	case get("BUILD_TAG") != "" || (get("BUILD_NUMBER") != "" && get("JOB_NAME") != ""):
		id := get("BUILD_TAG")
		if id == "" {
			// BUILD_TAG is "jenkins-${JOB_NAME}-${BUILD_NUMBER}"; build the same when it is missing.
			id = "jenkins-" + get("JOB_NAME") + "-" + get("BUILD_NUMBER")
		}
		return Info{
			System:     Jenkins,
			BuildID:    SanitizeID(id),
			Pipeline:   get("JOB_NAME"),
			Repository: get("GIT_URL"),
			Branch:     get("GIT_BRANCH"),
			Revision:   get("GIT_COMMIT"),
			Worker:     get("NODE_NAME"),
		}
	}
	return Info{}
}

func github(get func(string) string) Info {
	id := "github-" + get("GITHUB_RUN_ID")
	if attempt := get("GITHUB_RUN_ATTEMPT"); attempt != "" {
		// A re-run keeps GITHUB_RUN_ID; the attempt makes it a new build.
		id += "-" + attempt
	}
	repo := get("GITHUB_REPOSITORY")
	pipeline := repo
	if wf := get("GITHUB_WORKFLOW"); wf != "" {
		// Workflow names such as "CI" repeat across repositories; ETA history is per pipeline.
		if pipeline != "" {
			pipeline += "/" + wf
		} else {
			pipeline = wf
		}
	}
	var repoURL string
	if repo != "" {
		server := get("GITHUB_SERVER_URL")
		if server == "" {
			server = "https://github.com"
		}
		repoURL = strings.TrimRight(server, "/") + "/" + repo
	}
	branch := get("GITHUB_HEAD_REF") // the source branch of a pull request
	if branch == "" {
		branch = get("GITHUB_REF_NAME")
	}
	return Info{
		System:     GitHub,
		BuildID:    SanitizeID(id),
		Pipeline:   pipeline,
		Repository: repoURL,
		Branch:     branch,
		Revision:   get("GITHUB_SHA"),
		Worker:     get("RUNNER_NAME"),
	}
}

// maxIDLen is the longest build id the events API accepts.
const maxIDLen = 128

// SanitizeID turns s into a valid build id (^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$): characters
// outside the allowed set become '-', leading characters that may not start an id are dropped,
// and the result is cut to 128 characters. It returns "" when nothing usable is left.
func SanitizeID(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case isAlnum(c):
			b = append(b, c)
		case len(b) == 0:
			// An id must start with a letter or digit.
		case c == '.' || c == '_' || c == ':' || c == '-':
			b = append(b, c)
		default:
			b = append(b, '-')
		}
	}
	if len(b) > maxIDLen {
		b = b[:maxIDLen]
	}
	return string(b)
}

// ValidID reports whether s is a build id the events API accepts.
func ValidID(s string) bool {
	return s != "" && len(s) <= maxIDLen && SanitizeID(s) == s
}

func isAlnum(c byte) bool {
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}
