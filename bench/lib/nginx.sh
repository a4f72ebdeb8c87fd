# Sourced by bench scripts: bench_nginx DIR PORT starts one nginx worker (daemon, pid in DIR/nginx.pid,
# errors in DIR/nginx-error.log) serving DIR/www on 127.0.0.1:PORT with keep-alive connections that never
# end during a run, as the scrape-path benchmarks need. Installs nginx first if it is missing. The caller
# stops it: kill "$(cat DIR/nginx.pid)". Returns non-zero (and says so) when nginx does not start.
bench_nginx() {
  local dir=$1 port=$2 root
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  command -v nginx >/dev/null || "$root/scripts/deps.sh" nginx >&2
  cat >"$dir/nginx.conf" <<CONF
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/nginx-error.log warn;
daemon on;
events { worker_connections 4000; }
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 600s;
  default_type application/json;
  server { listen 127.0.0.1:$port; root $dir/www; }
}
CONF
  "$(command -v nginx || echo /usr/sbin/nginx)" -c "$dir/nginx.conf" -p "$dir" || { echo "FAILED: nginx did not start"; return 1; }
}
