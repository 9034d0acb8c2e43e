let tp = "syscalls:sys_enter_openat"
bpf_tracepoint $tp {|e| count }
