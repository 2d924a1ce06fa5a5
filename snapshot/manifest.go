// Package snapshot builds and reads the export's snapshots: one consistent
// read of the inventory written as gzip NDJSON part files per RBAC group, and
// a manifest that names them, under one container of a blob.Bucket.
//
// A part file is a sequence of gzip members, each holding LinesPerMember
// lines (the last one fewer). The concatenation is a valid gzip file for any
// reader, and the manifest keeps the byte offset of every member, so a page
// that starts at line L of a file seeks to member L/LinesPerMember and
// decompresses at most one member's worth of lines it does not serve: deep
// pages cost the same as the first.
//
// The layout keeps the vendor's, because clients parse the URLs:
//
//	export-<snapshot id>/<YYYY-MM-DD>/<HHMM>/CertificateAssessmentExport/manifest.json
//	export-<snapshot id>/<YYYY-MM-DD>/<HHMM>/CertificateAssessmentExport/json/OrgId=<org id>/_RbacGroupId=<id>/part-<NNNNN>-<snapshot id>.c000.json.gz
package snapshot

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/certinv/certinv/blob"
)

// Manifest names the part files of a snapshot. It is written after every
// part file and before the snapshot is published, so a published snapshot's
// manifest always names complete files.
type Manifest struct {
	SnapshotID     string    `json:"snapshotId"`
	OrgID          string    `json:"orgId"`
	GeneratedAt    time.Time `json:"generatedAt"`
	LinesPerMember int       `json:"linesPerMember"`
	Files          []File    `json:"files"` // ordered by GroupID, then part number
}

// File is one part file of a snapshot.
type File struct {
	Key       string  `json:"key"` // bucket key of the part file
	GroupID   int64   `json:"groupId"`
	GroupName string  `json:"groupName"`
	Records   int64   `json:"records"`
	Size      int64   `json:"size"`    // compressed bytes
	Members   []int64 `json:"members"` // byte offset of each gzip member; member i holds lines [i*LinesPerMember, (i+1)*LinesPerMember)
}

// Container returns the bucket container of a snapshot.
func Container(snapshotID string) string { return "export-" + snapshotID }

const containerPrefix = "export-"

// exportPrefix returns "<container>/<YYYY-MM-DD>/<HHMM>/CertificateAssessmentExport".
func exportPrefix(snapshotID string, generatedAt time.Time) string {
	return Container(snapshotID) + "/" + generatedAt.UTC().Format("2006-01-02/1504") + "/CertificateAssessmentExport"
}

// ManifestKey returns the bucket key of a snapshot's manifest.
func ManifestKey(snapshotID string, generatedAt time.Time) string {
	return exportPrefix(snapshotID, generatedAt) + "/manifest.json"
}

// PartKey returns the bucket key of part file part of a group.
func PartKey(snapshotID, orgID string, generatedAt time.Time, groupID int64, part int) string {
	return fmt.Sprintf("%s/json/OrgId=%s/_RbacGroupId=%d/part-%05d-%s.c000.json.gz",
		exportPrefix(snapshotID, generatedAt), orgID, groupID, part, snapshotID)
}

// maxManifestBytes bounds what ReadManifest reads: a manifest holds about
// 8 bytes per member of 1,000 lines, so 4 x 10^8 records need some 4 MB.
const maxManifestBytes = 256 << 20

// ReadManifest reads and checks the manifest at key.
func ReadManifest(ctx context.Context, b blob.Bucket, key string) (*Manifest, error) {
	rc, err := b.Open(ctx, key, 0, -1)
	if err != nil {
		return nil, fmt.Errorf("read manifest %s: %w", key, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, maxManifestBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read manifest %s: %w", key, err)
	}
	if len(data) > maxManifestBytes {
		return nil, fmt.Errorf("read manifest %s: larger than %d bytes", key, maxManifestBytes)
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("read manifest %s: %w", key, err)
	}
	if err := m.check(); err != nil {
		return nil, fmt.Errorf("read manifest %s: %w", key, err)
	}
	return &m, nil
}

// check verifies what CopyRecords relies on, so that a damaged manifest is
// an error and never an index out of range.
func (m *Manifest) check() error {
	if m.LinesPerMember <= 0 {
		return fmt.Errorf("linesPerMember %d is not positive", m.LinesPerMember)
	}
	for i := range m.Files {
		f := &m.Files[i]
		if f.Key == "" || f.Records < 0 || f.Size < 0 {
			return fmt.Errorf("file %d: missing key or negative size", i)
		}
		want := (f.Records + int64(m.LinesPerMember) - 1) / int64(m.LinesPerMember)
		if int64(len(f.Members)) != want {
			return fmt.Errorf("file %s: %d members for %d records, want %d", f.Key, len(f.Members), f.Records, want)
		}
		for k, off := range f.Members {
			if (k == 0 && off != 0) || (k > 0 && off <= f.Members[k-1]) || off >= f.Size {
				return fmt.Errorf("file %s: member %d at offset %d is out of order", f.Key, k, off)
			}
		}
		if !strings.HasPrefix(f.Key, Container(m.SnapshotID)+"/") {
			return fmt.Errorf("file %s: outside the snapshot's container", f.Key)
		}
	}
	return nil
}
