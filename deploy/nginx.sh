#!/usr/bin/env bash
# nginx in front of gunicorn on this machine, in the foreground (as deploy/run.sh and
# the tests run it): the same configuration as the chart's sidecar and compose's proxy.
#   deploy/nginx.sh install                       the Debian package, if nginx is missing
#   deploy/nginx.sh run PORT UPSTREAM DIR         listen on PORT, pass to UPSTREAM (host:port);
#                                                 config, temp files and logs under DIR
source "$(dirname "$0")/lib.sh"

install_nginx() { command -v nginx >/dev/null || apt_install nginx-light; }

case "${1:-}" in
  install) install_nginx ;;
  run)
    [ $# -eq 4 ] || die "usage: deploy/nginx.sh run PORT UPSTREAM DIR"
    install_nginx
    export PROXY_PORT="$2" WEB_UPSTREAM="$3" API_MAX_BODY_BYTES="${API_MAX_BODY_BYTES:-67108864}"
    dir="$4"
    mkdir -p "$dir/tmp"
    envsubst '${PROXY_PORT} ${WEB_UPSTREAM} ${API_MAX_BODY_BYTES}' \
      <"$MC_ROOT/helm/montecarlo/files/nginx.conf.template" >"$dir/server.conf"
    cat >"$dir/nginx.conf" <<CONF
daemon off;
worker_processes 1;
pid $dir/nginx.pid;
error_log stderr warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $dir/tmp/body;
  proxy_temp_path $dir/tmp/proxy;
  fastcgi_temp_path $dir/tmp/fastcgi;
  uwsgi_temp_path $dir/tmp/uwsgi;
  scgi_temp_path $dir/tmp/scgi;
  include $dir/server.conf;
}
CONF
    exec nginx -e stderr -p "$dir" -c "$dir/nginx.conf"
    ;;
  *) die "usage: deploy/nginx.sh install | run PORT UPSTREAM DIR" ;;
esac
