bpf_tracepoint "syscalls:sys_enter_openat" {|e| count --by $e.comm }
