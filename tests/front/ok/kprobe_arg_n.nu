bpf_kprobe "do_sys_open" {|ctx| emit {dfd: $ctx.arg0, flags: $ctx.flags, mode: $ctx.mode} }
