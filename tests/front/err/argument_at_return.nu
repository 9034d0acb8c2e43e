bpf_uretprobe "/bin/bash" "readline" {|ctx| emit $ctx.prompt }
