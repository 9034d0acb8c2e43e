bpf_tracepoint "syscalls:sys_enter_openat" {|e| emit {pid: $e.pid, file: $e.filename} }
bpf_tracepoint "syscalls:sys_exit_openat" {|e| count --by $e.ret }
bpf_tracepoint "syscalls:sys_enter_openat" {|e| count }
