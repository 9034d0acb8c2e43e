bpf_interval 1sec {|t| emit {ts: $t.ts} }
