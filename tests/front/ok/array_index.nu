bpf_tracepoint "raw_syscalls:sys_enter" {|e| if $e.id == 0 { count --by {pid: $e.pid, size: $e.args.2} } }
