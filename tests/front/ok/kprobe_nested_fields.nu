bpf_kprobe "vfs_read" {|ctx| emit {name: $ctx.file.f_path.dentry.d_name.name, count: $ctx.count} }
