# The nginx peer's configuration, shared by benches/run.sh and benches/profile/callgrind.sh:
# a plain keep-alive reverse proxy to the mock with a bearer check, no buffering, no access
# log (shared/notes/benchmarking.md).
#   source benches/peers/nginx_conf.sh
#   nginx_conf DIR LISTEN_PORT MOCK_PORT KEY WORKERS [MAIN_DIRECTIVE]   # writes DIR/nginx.conf
# MAIN_DIRECTIVE: one more main-context line, e.g. "worker_cpu_affinity auto;" (nginx_pinned).
nginx_conf() {
  local dir=$1 port=$2 mock_port=$3 key=$4 workers=$5 main=${6:-}
  mkdir -p "$dir/logs"
  cat >"$dir/nginx.conf" <<CONF
worker_processes $workers;
$main
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $dir/body; proxy_temp_path $dir/proxy;
  fastcgi_temp_path $dir/fcgi; uwsgi_temp_path $dir/uwsgi; scgi_temp_path $dir/scgi;
  client_max_body_size 64m; client_body_buffer_size 2m;
  upstream mock { server 127.0.0.1:$mock_port; keepalive 256; }
  server {
    listen 127.0.0.1:$port reuseport;
    location / {
      if (\$http_authorization != "Bearer $key") { return 401; }
      proxy_pass http://mock;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Authorization "Bearer x";
      proxy_buffering off;
    }
  }
}
CONF
}
