// Package packagetest tests what `make package` puts in dist/: the .deb and .rpm, the
// container image's OCI layout, the client archives with SHA256SUMS, and the CI integrations
// (action.yml, the GitLab include) that install them. The tests are behind the build tag
// "package" and read the packages from BUILDMON_PACKAGE_DIR; run them with `make package-test`.
package packagetest
