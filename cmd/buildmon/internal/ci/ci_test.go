package ci

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestDetect(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want Info
	}{
		{
			name: "no CI",
			env:  map[string]string{"HOME": "/home/me", "BUILD_NUMBER": "7"},
			want: Info{},
		},
		{
			name: "empty variables count as absent",
			env:  map[string]string{"GITHUB_RUN_ID": "", "CI_PIPELINE_ID": "", "BUILD_TAG": "", "BUILDKITE_BUILD_ID": ""},
			want: Info{},
		},
		{
			name: "GitHub Actions",
			env: map[string]string{
				"GITHUB_ACTIONS":     "true",
				"GITHUB_RUN_ID":      "9876543210",
				"GITHUB_RUN_ATTEMPT": "2",
				"GITHUB_WORKFLOW":    "CI",
				"GITHUB_REPOSITORY":  "octo/app",
				"GITHUB_SERVER_URL":  "https://github.example.com/",
				"GITHUB_REF_NAME":    "main",
				"GITHUB_SHA":         "0123abcd",
				"RUNNER_NAME":        "runner-7",
			},
			want: Info{
				System: GitHub, BuildID: "github-9876543210-2", Pipeline: "octo/app/CI",
				Repository: "https://github.example.com/octo/app", Branch: "main", Revision: "0123abcd", Worker: "runner-7",
			},
		},
		{
			name: "GitHub Actions pull request without attempt and server URL",
			env: map[string]string{
				"GITHUB_RUN_ID":     "55",
				"GITHUB_REPOSITORY": "octo/app",
				"GITHUB_REF_NAME":   "12/merge",
				"GITHUB_HEAD_REF":   "feature/x",
			},
			want: Info{
				System: GitHub, BuildID: "github-55", Pipeline: "octo/app",
				Repository: "https://github.com/octo/app", Branch: "feature/x",
			},
		},
		{
			name: "GitLab CI",
			env: map[string]string{
				"GITLAB_CI":          "true",
				"CI_PIPELINE_ID":     "4711",
				"CI_PROJECT_PATH":    "group/sub/app",
				"CI_PROJECT_URL":     "https://gitlab.example.com/group/sub/app",
				"CI_COMMIT_REF_NAME": "release/1.2",
				"CI_COMMIT_SHA":      "feedbeef",
				"CI_RUNNER_ID":       "42",
			},
			want: Info{
				System: GitLab, BuildID: "gitlab-4711", Pipeline: "group/sub/app",
				Repository: "https://gitlab.example.com/group/sub/app", Branch: "release/1.2", Revision: "feedbeef", Worker: "42",
			},
		},
		{
			name: "Jenkins with BUILD_TAG",
			env: map[string]string{
				"BUILD_TAG":    "jenkins-folder/app-123",
				"BUILD_NUMBER": "123",
				"JOB_NAME":     "folder/app",
				"GIT_URL":      "git@example.com:team/app.git",
				"GIT_BRANCH":   "origin/main",
				"GIT_COMMIT":   "cafe",
				"NODE_NAME":    "agent-3",
			},
			want: Info{
				System: Jenkins, BuildID: "jenkins-folder-app-123", Pipeline: "folder/app",
				Repository: "git@example.com:team/app.git", Branch: "origin/main", Revision: "cafe", Worker: "agent-3",
			},
		},
		{
			name: "Jenkins without BUILD_TAG",
			env:  map[string]string{"BUILD_NUMBER": "9", "JOB_NAME": "app"},
			want: Info{System: Jenkins, BuildID: "jenkins-app-9", Pipeline: "app"},
		},
		{
			name: "Buildkite",
			env: map[string]string{
				"BUILDKITE":               "true",
				"BUILDKITE_BUILD_ID":      "01890f3c-1111-2222-3333-444455556666",
				"BUILDKITE_PIPELINE_SLUG": "app",
				"BUILDKITE_REPO":          "https://github.com/octo/app.git",
				"BUILDKITE_BRANCH":        "main",
				"BUILDKITE_COMMIT":        "abc",
				"BUILDKITE_AGENT_NAME":    "bk-agent-1",
				// Buildkite agents may also export Jenkins-like names; Buildkite must win.
				"BUILD_NUMBER": "3", "JOB_NAME": "x",
			},
			want: Info{
				System: Buildkite, BuildID: "buildkite-01890f3c-1111-2222-3333-444455556666", Pipeline: "app",
				Repository: "https://github.com/octo/app.git", Branch: "main", Revision: "abc", Worker: "bk-agent-1",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Detect(func(k string) string { return tt.env[k] })
			assert.Equal(t, tt.want, got)
			if got.BuildID != "" {
				assert.True(t, ValidID(got.BuildID), "detected id %q must be valid", got.BuildID)
			}
		})
	}
}

func TestSanitizeID(t *testing.T) {
	tests := map[string]string{
		"abc-1.2:3_x":            "abc-1.2:3_x",
		"--x":                    "x",
		"a b/c":                  "a-b-c",
		"émoji":                  "moji",
		"":                       "",
		"///":                    "",
		strings.Repeat("a", 200): strings.Repeat("a", 128),
	}
	for in, want := range tests {
		assert.Equal(t, want, SanitizeID(in), "SanitizeID(%q)", in)
	}
	assert.True(t, ValidID("build-1"))
	assert.False(t, ValidID("-build"))
	assert.False(t, ValidID("a/b"))
	assert.False(t, ValidID(""))
	assert.False(t, ValidID(strings.Repeat("a", 129)))
}
