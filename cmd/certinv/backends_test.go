package main

import (
	"strings"
	"testing"
)

func TestAzureConfig(t *testing.T) {
	const key = "c2VjcmV0LWtleQ=="
	for _, tc := range []struct {
		name, spec, key string
		wantURL         string // AccountURL
		wantCS          bool   // a connection string
		wantDesc        string
		wantErr         string
	}{
		{name: "connection string", spec: "DefaultEndpointsProtocol=https;AccountName=fleet;AccountKey=" + key + ";EndpointSuffix=core.windows.net", wantCS: true, wantDesc: "azure account fleet"},
		{name: "connection string with endpoint", spec: "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=" + key + ";BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;", wantCS: true, wantDesc: "azure http://127.0.0.1:10000/devstoreaccount1"},
		{name: "account URL", spec: "https://fleet.blob.core.windows.net/", key: key, wantURL: "https://fleet.blob.core.windows.net", wantDesc: "azure https://fleet.blob.core.windows.net/"},
		{name: "account URL without key", spec: "https://fleet.blob.core.windows.net", wantErr: "--blob-key"},
		{name: "account URL with SAS", spec: "https://fleet.blob.core.windows.net/?sv=2020&sig=abc", key: key, wantErr: "without a query"},
		{name: "key with connection string", spec: "AccountName=fleet;AccountKey=" + key, key: key, wantErr: "carries its own AccountKey"},
		{name: "neither", spec: "/var/lib/certinv/files", wantErr: "want an Azure Storage connection string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, desc, err := azureConfig(tc.spec, tc.key)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("azureConfig(%q) error = %v, want one saying %q", tc.spec, err, tc.wantErr)
				}
				if strings.Contains(err.Error(), key) {
					t.Errorf("azureConfig(%q) error %q shows the key", tc.spec, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("azureConfig(%q) = %v", tc.spec, err)
			}
			if (cfg.ConnectionString != "") != tc.wantCS || cfg.AccountURL != tc.wantURL {
				t.Errorf("azureConfig(%q) = %+v, want connection string %v, account URL %q", tc.spec, cfg, tc.wantCS, tc.wantURL)
			}
			if desc != tc.wantDesc || strings.Contains(desc, key) {
				t.Errorf("azureConfig(%q) describes it as %q, want %q (never the key)", tc.spec, desc, tc.wantDesc)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"postgres://certinv:hunter2@db.example.com:5432/certinv?sslmode=verify-full", "postgres://certinv:xxxxx@db.example.com:5432/certinv?sslmode=verify-full"},
		{"postgres://db.example.com/certinv?password=hunter2&search_path=x", "postgres://db.example.com/certinv?password=xxxxx&search_path=x"},
		{"host=db.example.com password=hunter2 dbname=certinv", "(PostgreSQL connection string)"},
	} {
		if got := redactDB(tc.in); got != tc.want {
			t.Errorf("redactDB(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := redactRedis("rediss://default:hunter2@cache.example.com:6380/0"); strings.Contains(got, "hunter2") || !strings.Contains(got, "cache.example.com:6380") {
		t.Errorf("redactRedis = %q, want the host without the password", got)
	}
}

func TestStoreOptionsCheck(t *testing.T) {
	for _, tc := range []struct {
		name    string
		o       storeOptions
		n       needs
		wantErr string
	}{
		{"data folder", storeOptions{data: "d"}, needs{bucket: true, keys: true}, ""},
		{"nothing", storeOptions{}, needs{}, "serve: --data DIR is required"},
		{"postgres alone for seed", storeOptions{db: "postgres://x"}, needs{}, ""},
		{"postgres without blob for serve", storeOptions{db: "postgres://x", keys: "k"}, needs{bucket: true, keys: true}, "required for the snapshot files (or --blob)"},
		{"postgres without keys for serve", storeOptions{db: "postgres://x", blob: "b"}, needs{bucket: true, keys: true}, "required for the keys (or --keys DIR)"},
		{"distributed", storeOptions{db: "postgres://x", blob: "b", keys: "k"}, needs{bucket: true, keys: true}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.o.check("serve", tc.n)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("check(%+v, %+v) = %v, want %q", tc.o, tc.n, err, tc.wantErr)
			}
		})
	}
}
