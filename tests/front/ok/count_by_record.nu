bpf_tracepoint "syscalls:sys_enter_openat" {|e| count --by {pid: $e.pid, comm: $e.comm} }
