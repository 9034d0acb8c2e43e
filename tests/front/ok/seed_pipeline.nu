bpf_kprobe "vfs_read" {|ctx| emit($ctx.pid) } | where pid > 1000 | group-by pid | each {|group| {pid: $group.name, count: ($group.items | length)}}
