package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// Each shell's script asks meshctl for the candidates of the words typed
// so far; an unknown shell is a usage error.
func TestCompletionScripts(t *testing.T) {
	for shell, want := range map[string]string{
		"bash": "complete -o bashdefault -o default -F _meshctl_complete meshctl",
		"zsh":  "compdef _meshctl meshctl",
		"fish": "complete -c meshctl -f -a '(__meshctl_complete)'",
	} {
		var out bytes.Buffer
		stdout = &out
		err := run([]string{"meshctl", "completion", shell})
		stdout = os.Stdout
		if err != nil || !strings.Contains(out.String(), want) || !strings.Contains(out.String(), "--generate-bash-completion") {
			t.Errorf("completion %s: %v\n%s", shell, err, out.String())
		}
	}
	if err := run([]string{"meshctl", "completion", "powershell"}); err == nil || !strings.Contains(err.Error(), "bash|zsh|fish") {
		t.Errorf("unknown shell: %v", err)
	}
}
