bpf_kprobe "vfs_read" {|ctx| count --by $ctx.file.f_flags }
