// Package peload is the synthesized userland's PE loader, kept pure: a
// file's bytes in, a checked image and its mapping plan out (the image in
// memory layout, relocated on request; its sections and the permission of
// each page; its imports and exports). It reads the file through
// internal/peimage and touches no guest memory: package guest decides
// where an image goes, maps what this package plans and resolves the
// imports against the other modules.
package peload
