bpf_uprobe "/bin/bash" "readline" {|ctx| emit {prompt: $ctx.prompt, line: $ctx.line} }
