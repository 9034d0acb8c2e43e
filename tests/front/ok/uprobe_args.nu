bpf_uprobe "/bin/bash" "readline" {|ctx| emit {prompt: $ctx.prompt, raw: $ctx.arg0} }
