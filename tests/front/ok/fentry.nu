bpf_fentry "vfs_read" {|ctx| count --by $ctx.count }
