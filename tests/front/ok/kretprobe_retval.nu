bpf_kretprobe "vfs_read" {|ctx| hist $ctx.retval }
