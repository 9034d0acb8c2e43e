bpf_uprobe "/bin/bash" "readline" {|ctx| emit($ctx.line) }
