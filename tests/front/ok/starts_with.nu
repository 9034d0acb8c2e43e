bpf_tracepoint "syscalls:sys_enter_openat" {|e| if $e.filename starts-with "/proc/" { count --by $e.comm } }
