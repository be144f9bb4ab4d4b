package main

import (
	"context"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	adminv1 "github.com/meshgate/meshgate/proto/meshgate/admin/v1"
)

// The scripts ask meshctl itself for candidates (urfave/cli's
// --generate-bash-completion), so they never go stale.
const bashCompletion = `_meshctl_complete() {
  local cur opts
  COMPREPLY=()
  cur="${COMP_WORDS[COMP_CWORD]}"
  if [[ "$cur" == "-"* ]]; then
    opts=$("${COMP_WORDS[@]:0:$COMP_CWORD}" "${cur}" --generate-bash-completion 2>/dev/null)
  else
    opts=$("${COMP_WORDS[@]:0:$COMP_CWORD}" --generate-bash-completion 2>/dev/null)
  fi
  COMPREPLY=($(compgen -W "${opts}" -- "${cur}"))
  return 0
}
complete -o bashdefault -o default -F _meshctl_complete meshctl
`

const zshCompletion = `#compdef meshctl
_meshctl() {
  local -a opts
  local cur=${words[-1]}
  if [[ "$cur" == "-"* ]]; then
    opts=("${(@f)$(${words[@]:0:#words[@]-1} ${cur} --generate-bash-completion)}")
  else
    opts=("${(@f)$(${words[@]:0:#words[@]-1} --generate-bash-completion)}")
  fi
  _describe 'values' opts
}
compdef _meshctl meshctl
`

// fish asks the same way, with the words before the cursor.
const fishCompletion = `function __meshctl_complete
    set -l words (commandline -opc)
    set -l cur (commandline -ct)
    if string match -q -- '-*' $cur
        $words $cur --generate-bash-completion 2>/dev/null
    else
        $words --generate-bash-completion 2>/dev/null
    end
end
complete -c meshctl -f -a '(__meshctl_complete)'
`

// completionTimeout bounds a name lookup made for the shell: completion
// that waits on an unreachable node is worse than none.
const completionTimeout = time.Second

// completeNames completes a command's one NAME argument with what list
// returns from the admin API (connection flags and MESHCTL_* variables
// as for the command itself); it prints nothing when the node cannot be
// asked.
func completeNames(list func(ctx context.Context, s *session) ([]string, error)) cli.BashCompleteFunc {
	return func(c *cli.Context) {
		if c.NArg() > 0 {
			return
		}
		s, err := connect(c)
		if err != nil {
			return
		}
		defer s.close()
		ctx, cancel := context.WithTimeout(c.Context, completionTimeout)
		defer cancel()
		names, err := list(ctx, s)
		if err != nil {
			return
		}
		for _, n := range names {
			fmt.Fprintln(c.App.Writer, n)
		}
	}
}

// resourceNames lists the names of one kind of resource, deleted ones left out.
func resourceNames(kind string) func(ctx context.Context, s *session) ([]string, error) {
	return func(ctx context.Context, s *session) ([]string, error) {
		r, err := s.client.ListResources(ctx, &adminv1.ListResourcesRequest{Kind: kind})
		if err != nil {
			return nil, err
		}
		var names []string
		for _, x := range r.Resources {
			if x.Origin != "cluster-deleted" {
				names = append(names, x.Name)
			}
		}
		return names, nil
	}
}

func completionCommand() *cli.Command {
	return &cli.Command{
		Name: "completion", Usage: "print a shell completion script: eval \"$(meshctl completion bash)\"", ArgsUsage: "bash|zsh|fish",
		Action: func(c *cli.Context) error {
			switch c.Args().First() {
			case "bash":
				fmt.Fprint(stdout, bashCompletion)
			case "zsh":
				fmt.Fprint(stdout, zshCompletion)
			case "fish":
				fmt.Fprint(stdout, fishCompletion)
			default:
				return cli.Exit("usage: meshctl completion bash|zsh|fish", 2)
			}
			return nil
		},
	}
}
