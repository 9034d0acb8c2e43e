bpf_tracepoint "syscalls:sys_enter_sync" { count }
