package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
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

func completionCommand() *cli.Command {
	return &cli.Command{
		Name: "completion", Usage: "print a shell completion script: eval \"$(meshctl completion bash)\"", ArgsUsage: "bash|zsh",
		Action: func(c *cli.Context) error {
			switch c.Args().First() {
			case "bash":
				fmt.Fprint(stdout, bashCompletion)
			case "zsh":
				fmt.Fprint(stdout, zshCompletion)
			default:
				return cli.Exit("usage: meshctl completion bash|zsh", 2)
			}
			return nil
		},
	}
}
