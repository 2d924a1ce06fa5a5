package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// cli runs certinv with args and returns its output; it fails the test on
// an error unless wantErr.
func cli(t *testing.T, wantErr bool, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, &out, &errOut)
	if (err != nil) != wantErr {
		t.Fatalf("certinv %s: error %v (want error: %v); stderr %s", strings.Join(args, " "), err, wantErr, errOut.String())
	}
	if err != nil {
		return err.Error()
	}
	return out.String()
}

func TestAdminCommands(t *testing.T) {
	data := t.TempDir()
	cli(t, false, "seed", "--data", data, "--devices", "6", "--certs-per-device", "2", "--groups", "2")
	groups := cli(t, false, "group", "list", "--data", data)
	lines := strings.Split(strings.TrimSpace(groups), "\n")
	if len(lines) < 2 {
		t.Fatalf("group list = %q, want groups", groups)
	}
	group := strings.Fields(lines[1])[1]

	if out := cli(t, false, "group", "grant", "--data", data, "--user", "alice@example.com", "--group", group); !strings.Contains(out, "may now read") {
		t.Errorf("group grant = %q", out)
	}
	if out := cli(t, true, "group", "grant", "--data", data, "--user", "alice@example.com", "--group", "nope"); !strings.Contains(out, `no group "nope"`) {
		t.Errorf("grant of an unknown group = %q", out)
	}
	if out := cli(t, false, "group", "grants", "--data", data); !strings.Contains(out, "alice@example.com") {
		t.Errorf("group grants = %q", out)
	}
	if out := cli(t, false, "group", "rule", "add", "--data", data, "--group", "Linux", "--priority", "5", "--os", "*linux*"); !strings.Contains(out, `group "Linux"`) {
		t.Errorf("rule add = %q", out)
	}
	rules := cli(t, false, "group", "rule", "list", "--data", data)
	if !strings.Contains(rules, "*linux*") {
		t.Errorf("rule list = %q", rules)
	}
	cli(t, true, "group", "rule", "add", "--data", data, "--group", "x")
	id := strings.Fields(strings.Split(strings.TrimSpace(rules), "\n")[1])[0]
	cli(t, false, "group", "rule", "delete", "--data", data, "--id", id)

	dev := strings.Repeat("ab", 20)
	if out := cli(t, false, "device", "tag", "--data", data, "--id", dev, "--tag", "pci,dmz"); !strings.Contains(out, "dmz, pci") || !strings.Contains(out, "has not reported") {
		t.Errorf("device tag = %q", out)
	}
	if out := cli(t, false, "device", "revoke", "--data", data, "--id", dev); !strings.Contains(out, "revoked at") {
		t.Errorf("device revoke = %q", out)
	}
	if out := cli(t, false, "device", "reset", "--data", data, "--id", dev); !strings.Contains(out, "credential\tnone") && !strings.Contains(out, "none (reports") {
		t.Errorf("device reset = %q", out)
	}
	cli(t, false, "group", "revoke", "--data", data, "--user", "alice@example.com", "--group", group)

	audit := cli(t, false, "audit", "--data", data)
	for _, action := range []string{"user.grant", "rule.add", "rule.delete", "device.tags", "device.revoke", "device.reset", "user.revoke"} {
		if !strings.Contains(audit, action) {
			t.Errorf("audit lacks %s:\n%s", action, audit)
		}
	}
	if !strings.Contains(audit, "cli:") {
		t.Errorf("audit actor is not the command line user:\n%s", audit)
	}
	if out := cli(t, false, "audit", "--data", data, "--json", "--limit", "1"); strings.Count(out, "\n") != 1 || !strings.Contains(out, `"action":"user.grant"`) {
		t.Errorf("audit --json --limit 1 = %q", out)
	}
}
