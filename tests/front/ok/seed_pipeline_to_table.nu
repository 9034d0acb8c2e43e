bpf_tracepoint "syscalls:sys_enter_read" {|ctx| emit($ctx.pid) } | where pid > 1000 | group-by pid --to-table | each {|g| {pid: $g.pid, count: ($g.items | length)}}
