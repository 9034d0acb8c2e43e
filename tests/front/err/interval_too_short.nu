bpf_interval 10us {|t| count }
