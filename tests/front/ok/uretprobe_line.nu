bpf_uretprobe "/bin/bash" "readline" {|ctx| emit {line: $ctx.line, ptr: $ctx.retval} }
