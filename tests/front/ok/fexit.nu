bpf_fexit "vfs_read" {|ctx| hist $ctx.retval }
