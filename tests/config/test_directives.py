"""Every directive of the table in every context: accepted where allowed, refused with
nginx's message where not. Then inheritance, one rule at a time."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from geoip_sample import city_db, country_db, org_db
from helpers import FFDHE2048_PEM, self_signed

from fastgate.config import ConfigError, load_config
from fastgate.config.context import EVENTS, HTTP, LOCATION, MAIN, SERVER, UPSTREAM
from fastgate.config.directives import TABLE, UPSTREAM_TABLE

# A valid use of each directive, as it would be written inside any allowed context.
SAMPLES = {
    "worker_processes": "worker_processes 2;",
    "http_engine": "http_engine h11;",
    "error_log": "error_log stderr warn;",
    "pid": "pid run/fastgate.pid;",
    "load_module": "load_module modules/ngx_http_auth_jwt_module.so;",
    "user": "user nobody;",
    "events": "events { worker_connections 64; }",
    "http": "http { }",
    "worker_connections": "worker_connections 64;",
    "server": "server { listen 127.0.0.1:8999; }",
    "upstream": "upstream pool { server 127.0.0.1:9001 weight=2 max_fails=3 fail_timeout=5s max_conns=4; keepalive 8; }",
    "map": 'map $http_x $mx { default 0; "a" 1; ~^b(.*) $1; }',
    "auth_delay": "auth_delay 1s;",
    "post_action": "post_action off;",
    "secure_link": "secure_link $arg_md5,$arg_expires;",
    "secure_link_md5": 'secure_link_md5 "$secure_link_expires$uri secret";',
    "secure_link_secret": "secure_link_secret hush;",
    "empty_gif": "empty_gif;",
    "modern_browser": "modern_browser gecko 1.0.1;",
    "userid": "userid on;",
    "userid_name": "userid_name uid;",
    "userid_domain": "userid_domain example.com;",
    "userid_path": "userid_path /;",
    "userid_expires": "userid_expires 365d;",
    "userid_flags": "userid_flags httponly samesite=lax;",
    "userid_p3p": 'userid_p3p \'policyref="/w3c/p3p.xml", CP="CUR ADM"\';',
    "userid_service": "userid_service 1;",
    "userid_mark": "userid_mark X;",
    "ancient_browser": "ancient_browser Links netscape4;",
    "modern_browser_value": "modern_browser_value modern;",
    "ancient_browser_value": "ancient_browser_value old;",
    "add_trailer": 'add_trailer X-Time "$request_time" always;',
    "valid_referers": "valid_referers none blocked server_names *.example.com ~\\.example\\.;",
    "proxy_cookie_domain": "proxy_cookie_domain ~^(.*)\\.internal$ $1.example;",
    "proxy_cookie_path": "proxy_cookie_path /app/ /;",
    "proxy_cookie_flags": "proxy_cookie_flags ~ secure httponly samesite=lax;",
    "proxy_bind": "proxy_bind $remote_addr transparent;",
    "geo": "geo $arg_ip $gx { default 0; 10.0.0.0/8 1; proxy 127.0.0.1; }",
    "split_clients": 'split_clients "${remote_addr}x" $sx { 10% a; * b; }',
    "log_format": "log_format short '$remote_addr $status';",
    "listen": "listen 127.0.0.1:8998 reuseport backlog=128;",
    "server_name": "server_name example.com *.example.org;",
    "location": "location /x/ { }",
    "return": 'return 200 "ok";',
    "internal": "internal;",
    "mirror": "mirror off;",
    "mirror_request_body": "mirror_request_body off;",
    "resolver": "resolver 127.0.0.1 [::1]:5353 valid=30s ipv6=off;",
    "resolver_timeout": "resolver_timeout 5s;",
    "limit_except": "limit_except GET { deny all; }",
    "allow": "allow 10.0.0.0/8;",
    "deny": "deny all;",
    "satisfy": "satisfy any;",
    "set_real_ip_from": "set_real_ip_from 10.0.0.0/8;",
    "real_ip_header": "real_ip_header X-Forwarded-For;",
    "real_ip_recursive": "real_ip_recursive on;",
    "stub_status": "stub_status;",
    "proxy_redirect": "proxy_redirect http://backend/ /;",
    "proxy_hide_header": "proxy_hide_header X-Powered-By;",
    "proxy_pass_header": "proxy_pass_header Server;",
    "proxy_intercept_errors": "proxy_intercept_errors on;",
    "proxy_ignore_headers": "proxy_ignore_headers X-Accel-Redirect Set-Cookie;",
    "alias": "alias /srv/;",
    "types_hash_max_size": "types_hash_max_size 2048;",
    "types_hash_bucket_size": "types_hash_bucket_size 64;",
    "log_not_found": "log_not_found off;",
    "proxy_cache_path": "proxy_cache_path /tmp/c levels=1:2 keys_zone=c:10m;",
    "proxy_no_cache": "proxy_no_cache $http_pragma;",
    "http2": "http2 on;",
    "chunked_transfer_encoding": "chunked_transfer_encoding on;",
    "reset_timedout_connection": "reset_timedout_connection on;",
    "worker_shutdown_timeout": "worker_shutdown_timeout 10s;",
    "absolute_redirect": "absolute_redirect off;",
    "port_in_redirect": "port_in_redirect off;",
    "server_name_in_redirect": "server_name_in_redirect on;",
    "timer_resolution": "timer_resolution 100ms;",
    "lock_file": "lock_file logs/nginx.lock;",
    "debug_points": "debug_points abort;",
    "worker_priority": "worker_priority -5;",
    "worker_cpu_affinity": "worker_cpu_affinity auto;",
    "worker_rlimit_core": "worker_rlimit_core 500M;",
    "working_directory": "working_directory /tmp;",
    "pcre_jit": "pcre_jit on;",
    "thread_pool": "thread_pool default threads=32 max_queue=65536;",
    "epoll_events": "epoll_events 512;",
    "worker_aio_requests": "worker_aio_requests 32;",
    "accept_mutex_delay": "accept_mutex_delay 500ms;",
    "debug_connection": "debug_connection 127.0.0.1;",
    "variables_hash_max_size": "variables_hash_max_size 1024;",
    "variables_hash_bucket_size": "variables_hash_bucket_size 64;",
    "map_hash_max_size": "map_hash_max_size 2048;",
    "map_hash_bucket_size": "map_hash_bucket_size 64;",
    "proxy_headers_hash_max_size": "proxy_headers_hash_max_size 512;",
    "proxy_headers_hash_bucket_size": "proxy_headers_hash_bucket_size 64;",
    "referer_hash_max_size": "referer_hash_max_size 2048;",
    "referer_hash_bucket_size": "referer_hash_bucket_size 64;",
    "connection_pool_size": "connection_pool_size 512;",
    "request_pool_size": "request_pool_size 4k;",
    "client_body_in_file_only": "client_body_in_file_only clean;",
    "client_body_in_single_buffer": "client_body_in_single_buffer on;",
    "sendfile_max_chunk": "sendfile_max_chunk 2m;",
    "aio": "aio threads;",
    "aio_write": "aio_write on;",
    "read_ahead": "read_ahead 0;",
    "directio": "directio 4m;",
    "directio_alignment": "directio_alignment 512;",
    "if_modified_since": "if_modified_since exact;",
    "etag": "etag off;",
    "disable_symlinks": "disable_symlinks off;",
    "send_lowat": "send_lowat 0;",
    "postpone_output": "postpone_output 1460;",
    "output_buffers": "output_buffers 2 32k;",
    "proxy_send_lowat": "proxy_send_lowat 0;",
    "keepalive_disable": "keepalive_disable msie6;",
    "lingering_close": "lingering_close on;",
    "lingering_time": "lingering_time 30s;",
    "lingering_timeout": "lingering_timeout 5s;",
    "msie_padding": "msie_padding off;",
    "msie_refresh": "msie_refresh off;",
    "log_subrequest": "log_subrequest off;",
    "open_log_file_cache": "open_log_file_cache max=1000 inactive=20s valid=1m min_uses=2;",
    "max_ranges": "max_ranges 1;",
    "random_index": "random_index on;",
    "add_before_body": "add_before_body /header.html;",
    "ssi": "ssi on;",
    "slice": "slice 1m;",
    "mp4": "mp4;",
    "mp4_buffer_size": "mp4_buffer_size 1m;",
    "mp4_max_buffer_size": "mp4_max_buffer_size 20m;",
    "mp4_start_key_frame": "mp4_start_key_frame on;",
    "ssi_silent_errors": "ssi_silent_errors on;",
    "ssi_last_modified": "ssi_last_modified on;",
    "ssi_types": "ssi_types text/plain;",
    "ssi_value_length": "ssi_value_length 512;",
    "ssi_min_file_chunk": "ssi_min_file_chunk 2k;",
    "ssi_ignore_recycled_buffers": "ssi_ignore_recycled_buffers on;",
    "add_after_body": "add_after_body /footer.html;",
    "addition_types": "addition_types text/plain;",
    "proxy_store": "proxy_store on;",
    "proxy_store_access": "proxy_store_access user:rw group:r;",
    "source_charset": "source_charset koi8-r;",
    "override_charset": "override_charset on;",
    "charset_map": "charset_map koi8-r windows-1251 { C0 FE; }",
    "flv": "flv;",
    "dav_methods": "dav_methods put delete;",
    "dav_access": "dav_access group:rw all:r;",
    "create_full_put_path": "create_full_put_path on;",
    "min_delete_depth": "min_delete_depth 2;",
    "proxy_force_ranges": "proxy_force_ranges on;",
    "postpone_gzipping": "postpone_gzipping 0;",
    "gunzip_buffers": "gunzip_buffers 32 4k;",
    "charset_types": "charset_types text/xml text/plain;",
    "limit_rate": "limit_rate 100k;",
    "limit_rate_after": "limit_rate_after 1m;",
    "proxy_limit_rate": "proxy_limit_rate 0;",
    "proxy_ignore_client_abort": "proxy_ignore_client_abort off;",
    "proxy_socket_keepalive": "proxy_socket_keepalive off;",
    "proxy_next_upstream_timeout": "proxy_next_upstream_timeout 10s;",
    "recursive_error_pages": "recursive_error_pages off;",
    "client_body_buffer_size": "client_body_buffer_size 16k;",
    "proxy_busy_buffers_size": "proxy_busy_buffers_size 16k;",
    "proxy_max_temp_file_size": "proxy_max_temp_file_size 0;",
    "proxy_temp_file_write_size": "proxy_temp_file_write_size 16k;",
    "subrequest_output_buffer_size": "subrequest_output_buffer_size 8k;",
    "gunzip": "gunzip on;",
    "client_body_temp_path": "client_body_temp_path body 1 2;",
    "proxy_temp_path": "proxy_temp_path /tmp/p;",
    "fastcgi_temp_path": "fastcgi_temp_path /tmp/f;",
    "memcached_pass": "memcached_pass 127.0.0.1:11211;",
    "memcached_connect_timeout": "memcached_connect_timeout 1s;",
    "memcached_send_timeout": "memcached_send_timeout 1s;",
    "memcached_read_timeout": "memcached_read_timeout 1s;",
    "memcached_buffer_size": "memcached_buffer_size 8k;",
    "memcached_gzip_flag": "memcached_gzip_flag 2;",
    "memcached_next_upstream": "memcached_next_upstream error timeout not_found;",
    "memcached_next_upstream_tries": "memcached_next_upstream_tries 2;",
    "memcached_next_upstream_timeout": "memcached_next_upstream_timeout 1s;",
    "memcached_bind": "memcached_bind 127.0.0.1;",
    "memcached_socket_keepalive": "memcached_socket_keepalive off;",
    "gzip": "gzip on;",
    "gzip_types": "gzip_types text/css application/json;",
    "gzip_min_length": "gzip_min_length 1000;",
    "gzip_comp_level": "gzip_comp_level 6;",
    "gzip_window": "gzip_window 16k;",
    "gzip_hash": "gzip_hash 64k;",
    "gzip_vary": "gzip_vary on;",
    "gzip_proxied": "gzip_proxied expired no-cache auth;",
    "gzip_http_version": "gzip_http_version 1.0;",
    "gzip_disable": 'gzip_disable msie6 "^curl/";',
    "gzip_static": "gzip_static always;",
    "gzip_buffers": "gzip_buffers 16 8k;",
    "gzip_no_buffer": "gzip_no_buffer on;",
    "sub_filter": "sub_filter old.example.com $host;",
    "sub_filter_once": "sub_filter_once off;",
    "sub_filter_types": "sub_filter_types text/css application/javascript;",
    "sub_filter_last_modified": "sub_filter_last_modified on;",
    "fastcgi_pass": "fastcgi_pass 127.0.0.1:9000;",
    "fastcgi_param": "fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;",
    "fastcgi_index": "fastcgi_index index.php;",
    "fastcgi_split_path_info": "fastcgi_split_path_info ^(.+\\.php)(/.+)$;",
    "fastcgi_pass_request_headers": "fastcgi_pass_request_headers on;",
    "fastcgi_pass_request_body": "fastcgi_pass_request_body on;",
    "fastcgi_connect_timeout": "fastcgi_connect_timeout 5s;",
    "fastcgi_send_timeout": "fastcgi_send_timeout 5s;",
    "fastcgi_read_timeout": "fastcgi_read_timeout 300s;",
    "fastcgi_intercept_errors": "fastcgi_intercept_errors on;",
    "fastcgi_hide_header": "fastcgi_hide_header X-Powered-By;",
    "fastcgi_pass_header": "fastcgi_pass_header X-Accel-Buffering;",
    "fastcgi_ignore_headers": "fastcgi_ignore_headers X-Accel-Expires;",
    "fastcgi_buffer_size": "fastcgi_buffer_size 32k;",
    "fastcgi_store": "fastcgi_store /tmp/kept$uri;",
    "fastcgi_store_access": "fastcgi_store_access all:r;",
    "fastcgi_catch_stderr": "fastcgi_catch_stderr \"PHP Fatal error\";",
    "fastcgi_keep_conn": "fastcgi_keep_conn on;",
    "fastcgi_buffering": "fastcgi_buffering off;",
    "fastcgi_request_buffering": "fastcgi_request_buffering off;",
    "fastcgi_buffers": "fastcgi_buffers 16 16k;",
    "fastcgi_busy_buffers_size": "fastcgi_busy_buffers_size 32k;",
    "fastcgi_max_temp_file_size": "fastcgi_max_temp_file_size 0;",
    "fastcgi_temp_file_write_size": "fastcgi_temp_file_write_size 32k;",
    "fastcgi_next_upstream": "fastcgi_next_upstream error timeout;",
    "fastcgi_next_upstream_tries": "fastcgi_next_upstream_tries 2;",
    "fastcgi_next_upstream_timeout": "fastcgi_next_upstream_timeout 10s;",
    "fastcgi_force_ranges": "fastcgi_force_ranges on;",
    "fastcgi_limit_rate": "fastcgi_limit_rate 0;",
    "fastcgi_send_lowat": "fastcgi_send_lowat 0;",
    "fastcgi_ignore_client_abort": "fastcgi_ignore_client_abort off;",
    "fastcgi_socket_keepalive": "fastcgi_socket_keepalive off;",
    "fastcgi_bind": "fastcgi_bind 127.0.0.1;",
    "fastcgi_no_cache": "fastcgi_no_cache $cookie_nocache;",
    "uwsgi_temp_path": "uwsgi_temp_path /tmp/u;",
    "scgi_temp_path": "scgi_temp_path /tmp/s;",
    "daemon": "daemon off;",
    "master_process": "master_process on;",
    "env": "env TZ;",
    "worker_rlimit_nofile": "worker_rlimit_nofile 65535;",
    "multi_accept": "multi_accept on;",
    "use": "use epoll;",
    "accept_mutex": "accept_mutex off;",
    "rewrite": "rewrite ^/old/(.*)$ /new/$1 last;",
    "set": "set $sample_var 1;",
    "break": "break;",
    "if": "if ($request_method = POST) { return 405; }",
    "rewrite_log": "rewrite_log on;",
    "uninitialized_variable_warn": "uninitialized_variable_warn off;",
    "try_files": "try_files $uri =404;",
    "proxy_pass": "proxy_pass http://127.0.0.1:9002/;",
    "fastgate_status": "fastgate_status;",
    "auth_jwt": "auth_jwt off;",
    "auth_jwt_key": 'auth_jwt_key "0123456789abcdef0123456789abcdef" hex;',
    "auth_jwt_key_file": "auth_jwt_key_file KEYFILE;",
    "auth_jwt_alg": "auth_jwt_alg HS256;",
    "auth_jwt_require": "auth_jwt_require $arg_ok error=403;",
    "auth_jwt_leeway": "auth_jwt_leeway 30s;",
    "auth_jwt_options": "auth_jwt_options on;",
    "auth_jwt_revocation": "auth_jwt_revocation off;",  # on needs fastgate_cluster
    "fastgate_cluster": "fastgate_cluster redis://127.0.0.1:6379 timeout=2s;",
    "auth_jwt_cache": "auth_jwt_cache 500;",
    "limit_req_zone": "limit_req_zone $binary_remote_addr zone=z2:1m rate=10r/s;",
    "limit_conn_zone": "limit_conn_zone $jwt_claim_sub zone=c2:1m;",
    "limit_req": "limit_req zone=z burst=5 nodelay;",
    "limit_req_status": "limit_req_status 429;",
    "limit_req_log_level": "limit_req_log_level warn;",
    "limit_req_dry_run": "limit_req_dry_run on;",
    "limit_conn": "limit_conn c 10;",
    "limit_conn_status": "limit_conn_status 429;",
    "limit_conn_log_level": "limit_conn_log_level info;",
    "limit_conn_dry_run": "limit_conn_dry_run off;",
    "auth_jwt_key_request": "auth_jwt_key_request https://id.example.com/jwks.json;",
    "auth_jwt_key_request_interval": "auth_jwt_key_request_interval 10m;",
    "auth_jwt_issuer": "auth_jwt_issuer https://id.example.com;",
    "auth_jwt_audience": "auth_jwt_audience api other;",
    "auth_jwt_claim_set": "auth_jwt_claim_set $roles realm_access roles;",
    "auth_jwt_header_set": "auth_jwt_header_set $jwt_kid kid;",
    "auth_jwt_type": "auth_jwt_type signed;",
    "auth_jwt_key_cache": "auth_jwt_key_cache 1h;",
    "proxy_set_header": "proxy_set_header X-User $jwt_claim_sub;",
    "proxy_http_version": "proxy_http_version 1.1;",
    "proxy_connect_timeout": "proxy_connect_timeout 5s;",
    "proxy_read_timeout": "proxy_read_timeout 1m;",
    "proxy_send_timeout": "proxy_send_timeout 500ms;",
    "proxy_next_upstream": "proxy_next_upstream error timeout http_502;",
    "proxy_next_upstream_tries": "proxy_next_upstream_tries 3;",
    "proxy_buffering": "proxy_buffering off;",
    "proxy_request_buffering": "proxy_request_buffering off;",
    "proxy_buffers": "proxy_buffers 8 16k;",
    "proxy_buffer_size": "proxy_buffer_size 16k;",
    "add_header": "add_header X-Frame-Options DENY always;",
    "error_page": "error_page 404 =200 /empty;",
    "client_max_body_size": "client_max_body_size 10m;",
    "client_header_timeout": "client_header_timeout 10s;",
    "client_body_timeout": "client_body_timeout 10s;",
    "send_timeout": "send_timeout 10s;",
    "expires": "expires 1h;",
    "merge_slashes": "merge_slashes off;",
    "keepalive_timeout": "keepalive_timeout 30s;",
    "keepalive_requests": "keepalive_requests 500;",
    "keepalive_time": "keepalive_time 1h;",
    "client_header_buffer_size": "client_header_buffer_size 1k;",
    "server_names_hash_bucket_size": "server_names_hash_bucket_size 64;",
    "server_names_hash_max_size": "server_names_hash_max_size 512;",
    "large_client_header_buffers": "large_client_header_buffers 4 16k;",
    "underscores_in_headers": "underscores_in_headers on;",
    "ignore_invalid_headers": "ignore_invalid_headers off;",
    "access_log": "access_log off;",
    "ssl": "ssl off;",
    "ssl_certificate": "ssl_certificate cert.pem; ssl_certificate_key key.pem;",
    "ssl_certificate_key": "ssl_certificate_key key.pem; ssl_certificate cert.pem;",
    "ssl_protocols": "ssl_protocols TLSv1.2 TLSv1.3;",
    "ssl_password_file": "ssl_password_file passwords;",
    "ssl_ciphers": "ssl_ciphers ECDHE+AESGCM;",
    "ssl_prefer_server_ciphers": "ssl_prefer_server_ciphers on;",
    "ssl_session_tickets": "ssl_session_tickets off;",
    "ssl_ecdh_curve": "ssl_ecdh_curve secp384r1;",
    "ssl_dhparam": "ssl_dhparam dhparam.pem;",
    "ssl_session_cache": "ssl_session_cache shared:SSL:10m;",
    "ssl_session_timeout": "ssl_session_timeout 1d;",
    "ssl_conf_command": "ssl_conf_command Options -SessionTicket;",
    "ssl_engine": "ssl_engine dynamic;",
    "proxy_ssl_conf_command": "proxy_ssl_conf_command MinProtocol TLSv1.2;",
    "ssl_session_ticket_key": "ssl_session_ticket_key ticket.key;",
    "ssl_trusted_certificate": "ssl_trusted_certificate cert.pem;",
    "ssl_verify_client": "ssl_verify_client off;",
    "ssl_reject_handshake": "ssl_reject_handshake off;",
    "ssl_client_certificate": "ssl_client_certificate cert.pem;",
    "ssl_verify_depth": "ssl_verify_depth 2;",
    "ssl_crl": "ssl_crl cert.pem;",
    "ssl_ocsp": "ssl_ocsp leaf;",
    "ssl_ocsp_responder": "ssl_ocsp_responder http://127.0.0.1:8080/ocsp;",
    "ssl_ocsp_cache": "ssl_ocsp_cache shared:one:10m;",
    "ssl_stapling": "ssl_stapling on;",
    "ssl_stapling_verify": "ssl_stapling_verify on;",
    "ssl_stapling_file": "ssl_stapling_file ocsp.der;",
    "ssl_stapling_responder": "ssl_stapling_responder http://ocsp.example.com/;",
    "ssl_buffer_size": "ssl_buffer_size 4k;",
    "ssl_early_data": "ssl_early_data on;",
    "auth_basic": 'auth_basic "Restricted";',
    "auth_basic_user_file": "auth_basic_user_file htpasswd;",
    "auth_request": "auth_request off;",
    "auth_request_set": "auth_request_set $auth_user $upstream_http_x_user;",
    "proxy_method": "proxy_method POST;",
    "proxy_set_body": 'proxy_set_body "sub=$jwt_claim_sub";',
    "proxy_pass_request_headers": "proxy_pass_request_headers off;",
    "proxy_pass_request_body": "proxy_pass_request_body off;",
    "proxy_ssl_server_name": "proxy_ssl_server_name on;",
    "proxy_ssl_name": "proxy_ssl_name backend.internal;",
    "proxy_ssl_verify": "proxy_ssl_verify on; proxy_ssl_trusted_certificate cert.pem;",
    "proxy_ssl_trusted_certificate": "proxy_ssl_trusted_certificate cert.pem;",
    "proxy_ssl_crl": "proxy_ssl_crl cert.pem;",
    "proxy_ssl_protocols": "proxy_ssl_protocols TLSv1.3;",
    "proxy_ssl_ciphers": "proxy_ssl_ciphers HIGH;",
    "proxy_ssl_certificate": "proxy_ssl_certificate cert.pem; proxy_ssl_certificate_key key.pem;",
    "proxy_ssl_certificate_key": "proxy_ssl_certificate_key key.pem;",
    "proxy_ssl_password_file": "proxy_ssl_password_file passwords;",
    "proxy_ssl_verify_depth": "proxy_ssl_verify_depth 2;",
    "proxy_ssl_session_reuse": "proxy_ssl_session_reuse on;",
    "sendfile": "sendfile on;",
    "tcp_nopush": "tcp_nopush on;",
    "tcp_nodelay": "tcp_nodelay on;",
    "types": "types { text/html html; }",
    "default_type": "default_type application/octet-stream;",
    "charset": "charset utf-8;",
    "server_tokens": "server_tokens off;",
    "root": "root /var/www;",
    "index": "index index.html;",
    "autoindex": "autoindex on;",
    "autoindex_exact_size": "autoindex_exact_size off;",
    "autoindex_format": "autoindex_format html;",
    "autoindex_localtime": "autoindex_localtime on;",
}
# the uwsgi and SCGI modules' directives are the FastCGI module's, under their prefixes
_FAMILY = ("pass", "param", "pass_request_headers", "pass_request_body", "connect_timeout",
           "send_timeout", "read_timeout", "intercept_errors", "hide_header", "pass_header",
           "ignore_headers", "buffer_size", "buffering", "request_buffering", "buffers",
           "busy_buffers_size", "max_temp_file_size", "temp_file_write_size",
           "next_upstream", "next_upstream_tries", "next_upstream_timeout", "force_ranges",
           "limit_rate", "ignore_client_abort", "socket_keepalive", "bind", "no_cache", "store",
           "store_access")
for _kind in ("uwsgi", "scgi"):
    for _name in _FAMILY:
        SAMPLES[f"{_kind}_{_name}"] = (SAMPLES[f"fastcgi_{_name}"]
                                       .replace("fastcgi_", f"{_kind}_")
                                       .replace(f"${_kind}_script_name", "$uri"))
SAMPLES.update({
    "uwsgi_modifier1": "uwsgi_modifier1 30;",
    "uwsgi_modifier2": "uwsgi_modifier2 0;",
    "uwsgi_string": "uwsgi_string extra;",
    # suwsgi://'s, as proxy_pass's https://
    **{name.replace("proxy_", "uwsgi_"): SAMPLES[name].replace("proxy_", "uwsgi_")
       for name in list(SAMPLES) if name.startswith("proxy_ssl_")},
})
# the gRPC module: the family's where it has them, proxy_set_header's and proxy_ssl_*'s
# under its prefix
SAMPLES.update({
    **{f"grpc_{name}": SAMPLES[f"fastcgi_{name}"].replace("fastcgi_", "grpc_")
       for name in ("pass", "connect_timeout", "send_timeout", "read_timeout",
                    "intercept_errors", "hide_header", "pass_header", "ignore_headers",
                    "buffer_size", "next_upstream", "next_upstream_tries",
                    "next_upstream_timeout", "socket_keepalive", "bind")},
    "grpc_set_header": "grpc_set_header X-User $jwt_claim_sub;",
    **{name.replace("proxy_", "grpc_"): SAMPLES[name].replace("proxy_", "grpc_")
       for name in list(SAMPLES) if name.startswith("proxy_ssl_")},
})
# the GeoIP module: databases written by the test (tests/geoip_sample.py), named with
# their whole path (GeoIP files are not looked for under the prefix)
SAMPLES.update({
    "geoip_country": "geoip_country GEOIPDIR/country.dat;",
    "geoip_org": "geoip_org GEOIPDIR/org.dat utf8;",
    "geoip_city": "geoip_city GEOIPDIR/city.dat;",
    "geoip_proxy": "geoip_proxy 10.0.0.0/8;",
    "geoip_proxy_recursive": "geoip_proxy_recursive on;",
})
# the XSLT filter: a stylesheet and a DTD written by the test
SAMPLES.update({
    "xslt_stylesheet": "xslt_stylesheet XSLTDIR/s.xsl a=1:b='x';",
    "xslt_param": "xslt_param n $arg_n;",
    "xslt_string_param": "xslt_string_param s $uri;",
    "xslt_types": "xslt_types text/xml application/xml;",
    "xslt_last_modified": "xslt_last_modified on;",
    "xml_entities": "xml_entities XSLTDIR/e.dtd;",
})
# the image filter, and the degradation module
SAMPLES.update({
    "degradation": "degradation sbrk=500m;",
    "degrade": "degrade 204;",
    "image_filter": "image_filter resize 100 $arg_h;",
    "image_filter_jpeg_quality": "image_filter_jpeg_quality 80;",
    "image_filter_webp_quality": "image_filter_webp_quality $arg_q;",
    "image_filter_sharpen": "image_filter_sharpen 0;",
    "image_filter_transparency": "image_filter_transparency off;",
    "image_filter_interlace": "image_filter_interlace on;",
    "image_filter_buffer": "image_filter_buffer 2m;",
})
SAMPLES.update({
    "http2_max_concurrent_streams": "http2_max_concurrent_streams 64;",
    "http2_body_preread_size": "http2_body_preread_size 128k;",
    "http2_idle_timeout": "http2_idle_timeout 3m;",
    "http2_max_requests": "http2_max_requests 500;",
    "http2_recv_timeout": "http2_recv_timeout 30s;",
    "http2_max_field_size": "http2_max_field_size 4k;",
    "http2_max_header_size": "http2_max_header_size 16k;",
    "http2_push": "http2_push /style.css;",
    "http2_push_preload": "http2_push_preload on;",
    "http2_max_concurrent_pushes": "http2_max_concurrent_pushes 10;",
    "http2_chunk_size": "http2_chunk_size 16k;",
    "http2_recv_buffer_size": "http2_recv_buffer_size 256k;",
    "http2_pool_size": "http2_pool_size 4k;",
    "http2_streams_index_size": "http2_streams_index_size 32;",
})
SAMPLES["stream"] = "stream { }"  # its own directives: tests/config/test_stream_directives.py
SAMPLES["mail"] = "mail { }"  # its own directives: tests/config/test_mail_directives.py
UPSTREAM_SAMPLES = {
    "server": "server 127.0.0.1:9003 backup;",
    "keepalive": "keepalive 16;",
    "keepalive_requests": "keepalive_requests 100;",
    "keepalive_timeout": "keepalive_timeout 30s;",
    "keepalive_time": "keepalive_time 30m;",
    "least_conn": "least_conn;",
    "ip_hash": "ip_hash;",
    "hash": "hash $remote_addr consistent;",
    "random": "random two least_conn;",
    "zone": "zone backend 64k;",
}

CONTEXTS = [MAIN, EVENTS, HTTP, SERVER, LOCATION, UPSTREAM]


def _config(ctx: str, body: str) -> str:
    """A config with ``body`` inside context ``ctx`` and nothing else of note."""
    if ctx == MAIN:
        # with an http block present, nothing is read as implicitly inside http
        return body + ("\n" if body.startswith("http ") else "\nhttp { }\n")
    if ctx == EVENTS:
        return "events {\n" + body + "\n}\n"
    zones = ("limit_req_zone $remote_addr zone=z:1m rate=1r/s; "
             "limit_conn_zone $remote_addr zone=c:1m; ")
    if ctx == HTTP:
        return "http {\n" + body + "\n" + zones + "}\n"
    if ctx == SERVER:
        return "http { " + zones + "server { listen 127.0.0.1:8997;\n" + body + "\n} }\n"
    if ctx == LOCATION:
        return ("http { " + zones + "server { listen 127.0.0.1:8997; location / {\n" + body
                + "\n} } }\n")
    return "http { upstream u { server 127.0.0.1:1;\n" + body + "\n} }\n"


def _cases() -> list[tuple[str, str, bool]]:
    out = []
    for name, spec in TABLE.items():
        for ctx in CONTEXTS:
            if ctx == UPSTREAM and name in UPSTREAM_TABLE:
                continue  # the upstream block's own directive of that name: below
            out.append((name, ctx, ctx in spec.contexts))
    for name in UPSTREAM_TABLE:
        out.append((f"upstream:{name}", UPSTREAM, True))
    return out


def test_every_directive_has_a_sample() -> None:
    assert set(TABLE) == set(SAMPLES)
    assert set(UPSTREAM_TABLE) == set(UPSTREAM_SAMPLES)


@pytest.mark.parametrize("name,ctx,allowed", _cases(), ids=[f"{n}-{c}" for n, c, _ in _cases()])
def test_directive_in_context(tmp_path: Path, name: str, ctx: str, allowed: bool) -> None:
    (tmp_path / "jwks.json").write_text('{"keys":[{"kty":"oct","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQ"}]}')
    if name.startswith(("ssl", "proxy_ssl", "uwsgi_ssl", "grpc_ssl")):
        self_signed(tmp_path)
        (tmp_path / "passwords").write_text("secret\n")
        (tmp_path / "dhparam.pem").write_text(FFDHE2048_PEM)
        (tmp_path / "ticket.key").write_bytes(bytes(80))
        (tmp_path / "ocsp.der").write_bytes(b"\x30\x00")
    (tmp_path / "htpasswd").write_text("alice:{PLAIN}secret\n")
    if name.startswith("upstream:"):
        sample = UPSTREAM_SAMPLES[name.split(":", 1)[1]]
    else:
        sample = SAMPLES[name]
    sample = sample.replace("KEYFILE", str(tmp_path / "jwks.json"))
    if name.startswith(("xslt_", "xml_")):
        (tmp_path / "s.xsl").write_text(
            '<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">'
            '<xsl:template match="/"><x/></xsl:template></xsl:stylesheet>')
        (tmp_path / "e.dtd").write_text('<!ENTITY nbsp "&#160;">\n')
        sample = sample.replace("XSLTDIR", str(tmp_path))
    if name.startswith("geoip_"):
        country_db(tmp_path / "country.dat")
        city_db(tmp_path / "city.dat")
        org_db(tmp_path / "org.dat")
        sample = sample.replace("GEOIPDIR", str(tmp_path))
    path = tmp_path / "t.conf"
    text = _config(ctx, sample)
    if name == "error_page" and ctx in (SERVER, LOCATION):
        text = text.replace("location / {", "location = /empty { return 204; } location / {")
    path.write_text(text)
    if allowed:
        load_config(str(path))
        return
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    line = 2 if ctx != MAIN else 1
    expected = f'"{name}" directive is not allowed here'
    if name == "server" and ctx == UPSTREAM:  # the upstream's own "server" takes no block
        expected = 'directive "server" is not terminated by ";"'
    assert str(info.value) == f"{expected} in {path}:{line}"


# --- inheritance -------------------------------------------------------------------------------


def _load(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "t.conf"
    path.write_text(text)
    return load_config(str(path))


def _loc(cfg, uri: str, server: int = 0):  # type: ignore[no-untyped-def]
    loc, _ = cfg.servers[server].locations.find(uri)
    return loc


INHERIT = """
http {
  auth_jwt_key "http-level-secret-0123456789abcdef";
  auth_jwt_alg HS256;
  proxy_read_timeout 11s;
  proxy_set_header X-A a;
  proxy_set_header X-B b;
  add_header X-H h;
  client_max_body_size 2m;
  error_page 404 /nf;
  server {
    listen 127.0.0.1:8001;
    proxy_read_timeout 22s;
    location / { }
    location /own/ {
      proxy_set_header X-C c;
      add_header X-L l always;
      client_max_body_size 0;
      auth_jwt on;
      auth_jwt_alg any;
      error_page 500 /err;
      location /own/deep/ { proxy_read_timeout 33s; }
    }
    location /nf { return 404; }
    location /err { return 500; }
  }
  server {
    listen 127.0.0.1:8002;
    auth_jwt on;
    auth_jwt_key "server-level-secret-0123456789abcdef";
    location / { auth_jwt off; }
    location /on/ { }
  }
}
"""


def test_scalars_inherit_and_override(tmp_path: Path) -> None:
    cfg = _load(tmp_path, INHERIT)
    assert _loc(cfg, "/").settings.proxy_read_timeout == 22
    assert _loc(cfg, "/own/x").settings.proxy_read_timeout == 22
    assert _loc(cfg, "/own/deep/x").settings.proxy_read_timeout == 33
    assert _loc(cfg, "/").settings.client_max_body_size == 2 * 1024 * 1024
    assert _loc(cfg, "/own/x").settings.client_max_body_size == 0
    assert _loc(cfg, "/own/x").settings.auth_jwt_alg == "any"
    assert _loc(cfg, "/").settings.auth_jwt_alg == "HS256"


def test_lists_inherited_only_when_level_sets_none(tmp_path: Path) -> None:
    cfg = _load(tmp_path, INHERIT)
    names = lambda loc: [n for n, _ in loc.settings.proxy_set_header]  # noqa: E731
    assert names(_loc(cfg, "/")) == ["X-A", "X-B"]
    assert names(_loc(cfg, "/own/x")) == ["X-C"]
    assert names(_loc(cfg, "/own/deep/x")) == ["X-C"]  # nested inherits from its parent
    assert [n for n, _, _ in _loc(cfg, "/").settings.add_header] == ["X-H"]
    assert [(n, a) for n, _, a in _loc(cfg, "/own/x").settings.add_header] == [("X-L", True)]
    assert [c for c, _ in _loc(cfg, "/").settings.error_page] == [404]
    assert [c for c, _ in _loc(cfg, "/own/x").settings.error_page] == [500]


def test_auth_inheritance_and_jwt_checks(tmp_path: Path) -> None:
    cfg = _load(tmp_path, INHERIT)
    assert _loc(cfg, "/").jwt is None
    own = _loc(cfg, "/own/x")
    assert own.jwt is not None and own.jwt.algorithm == "any"
    assert _loc(cfg, "/own/deep/x").jwt is own.jwt  # same keys/alg: one check, one cache
    assert _loc(cfg, "/", 1).jwt is None
    on = _loc(cfg, "/on/", 1)
    assert on.jwt is not None
    assert on.jwt.keys[0].secret == b"server-level-secret-0123456789abcdef"
    assert cfg.servers[1].fallback.jwt is on.jwt
    # every check once, for the worker to build one verifier each
    assert len(cfg.jwt_checks) == len({id(c) for c in cfg.jwt_checks}) == 2
    assert {id(own.jwt), id(on.jwt)} == {id(c) for c in cfg.jwt_checks}


def test_return_with_auth_warns(tmp_path: Path) -> None:
    cfg = _load(tmp_path, """http { server { listen 127.0.0.1:1;
      auth_jwt_key "k-k-k-k-k-k-k-k-k-k-k-k-k-k-k-k"; auth_jwt on;
      location /x { return 200; } } }""")
    assert any('"return" in location "/x" runs before auth_jwt' in w for w in cfg.warnings)


def test_ignored_directives_warn(tmp_path: Path) -> None:
    cfg = _load(tmp_path, "http {\nsendfile on;\ngzip_buffers 16 8k;\ngzip_types text/plain;\n"
                          "proxy_buffering off;\n}\n")
    assert len(cfg.warnings) == 2  # (gzip_types works)
    assert cfg.warnings[0].startswith('[warn] "sendfile" directive is ignored')
    assert cfg.warnings[1].startswith('[warn] "gzip_buffers" directive is ignored')


def test_lingering_settings(tmp_path: Path) -> None:
    cfg = _load(tmp_path, """http { lingering_time 10s; server { listen 127.0.0.1:1;
      lingering_close always; lingering_timeout 2s; location /x { lingering_close off; } } }""")
    server = cfg.servers[0].fallback.settings
    assert (server.lingering_close, server.lingering_time, server.lingering_timeout) == (
        "always", 10.0, 2.0)
    assert _loc(cfg, "/x").settings.lingering_close == "off"
    assert not cfg.warnings  # they work: no "ignored" warning
    with pytest.raises(ConfigError, match='invalid value "sometimes" in "lingering_close" '
                                          'directive, it must be "off", "on" or "always"'):
        _load(tmp_path, "http { lingering_close sometimes; }")


def test_keepalive_timeout_s_header_value(tmp_path: Path) -> None:
    """keepalive_timeout's second value is the Keep-Alive header's timeout, in whole
    seconds, inherited apart from the first as nginx merges them; its policy carries
    it to the connection."""
    cfg = _load(tmp_path, """http { keepalive_timeout 65 1m; server { listen 127.0.0.1:1;
      location /a { keepalive_timeout 30; } location /b { keepalive_timeout 30 0; }
      location /c { keepalive_timeout 500ms 90s; } } }""")
    server = cfg.servers[0].fallback.settings
    assert (server.keepalive_timeout, server.keepalive_header) == (65.0, 60)
    got = {p: _loc(cfg, p).settings for p in ("/a", "/b", "/c")}
    assert [(s.keepalive_timeout, s.keepalive_header, s.conn_policy.keepalive_header)
            for s in got.values()] == [(30.0, 60, 60), (30.0, 0, 0), (0.5, 90, 90)]
    assert _load(tmp_path, "http { server { listen 127.0.0.1:1; } }").servers[
        0].fallback.settings.conn_policy.keepalive_header == 0
    for bad in ("65 500ms", "65 x", "65 -1"):
        with pytest.raises(ConfigError, match='"keepalive_timeout" directive invalid value'):
            _load(tmp_path, f"http {{ keepalive_timeout {bad}; }}")
    with pytest.raises(ConfigError, match='"keepalive_timeout" directive is duplicate'):
        _load(tmp_path, "http { keepalive_timeout 1; keepalive_timeout 2 3; }")


def test_request_body_settings(tmp_path: Path) -> None:
    cfg = _load(tmp_path, f"""http {{ client_body_buffer_size 1m; server {{ listen 127.0.0.1:1;
      client_body_temp_path spool 2;
      location /x {{ proxy_request_buffering off; client_body_temp_path {tmp_path}/abs; }}
      location /y {{ proxy_pass http://127.0.0.1:2; }} }} }}""")
    y = _loc(cfg, "/y").settings
    assert (y.proxy_request_buffering, y.client_body_buffer_size, y.client_body_temp_path) == (
        True, 1024 * 1024, str(tmp_path / "spool"))  # from the prefix: the file's directory
    assert (tmp_path / "spool").is_dir()  # made at load, as nginx makes its paths
    x = _loc(cfg, "/x").settings
    assert (x.proxy_request_buffering, x.client_body_temp_path) == (False, f"{tmp_path}/abs")
    assert not cfg.warnings  # they work: no "ignored" warning
    default = _load(tmp_path, "http { server { listen 127.0.0.1:1; } }").servers[0].fallback
    assert (default.settings.proxy_request_buffering, default.settings.client_body_buffer_size,
            default.settings.client_body_temp_path) == (True, 16384, None)
    with pytest.raises(ConfigError, match='"client_body_temp_path" directive is duplicate'):
        _load(tmp_path, "http { client_body_temp_path a; client_body_temp_path b; }")
    # the levels as nginx checks them: digits, none 0, at most 10 in all
    for levels in ("01 2", "3", "4 3 3", "10"):
        _load(tmp_path, f"http {{ client_body_temp_path t {levels}; }}")
    for levels, bad in (("0", "0"), ("1 -1", "-1"), ("4 4 3", "3"), ("11", "11"),
                        ("1x", "1x"), ("+1", "+1")):
        with pytest.raises(ConfigError, match=f'invalid value "{re.escape(bad)}"'):
            _load(tmp_path, f"http {{ client_body_temp_path t {levels}; }}")


def test_request_body_file_loads_without_a_warning(tmp_path: Path) -> None:
    # (a body past the buffer has a file to name: the variable is never empty there)
    cfg = _load(tmp_path, """http { server { listen 127.0.0.1:1;
      location / { proxy_set_header X-File $request_body_file;
                   proxy_pass http://127.0.0.1:2; } } }""")
    assert [w for w in cfg.warnings if "request_body_file" in w] == []


def test_a_framing_header_set_by_the_configuration_is_warned(tmp_path: Path) -> None:
    cfg = _load(tmp_path, """http { server { listen 127.0.0.1:1; location / {
      proxy_set_header Content-Length $content_length; proxy_set_header X-A 1;
      proxy_set_header Transfer-Encoding "";
      proxy_pass http://127.0.0.1:2; } } }""")
    assert [w for w in cfg.warnings if "frames the request body" in w] == [
        '[warn] "proxy_set_header Content-Length" is ignored: fastgate frames the request '
        f"body it sends itself (its length, or chunked) in {tmp_path / 't.conf'}:2"]
    from fastgate.proxy.headers import set_plan

    plan = set_plan(_loc(cfg, "/").settings.proxy_set_header)
    assert [name for name, *_ in plan] == ["X-A"]  # (the empty one asks for nothing)


def test_main_settings(tmp_path: Path) -> None:
    cfg = _load(tmp_path, "worker_processes auto;\npid /tmp/fg.pid;\nerror_log stderr info;\n"
                          "events { worker_connections 99; }\n")
    assert cfg.worker_processes >= 1
    assert cfg.pid == "/tmp/fg.pid"
    assert [(e.file.path, e.level) for e in cfg.error_logs] == [("stderr", "info")]
    assert cfg.worker_connections == 99


def test_upstreams_and_proxy_pass(tmp_path: Path) -> None:
    cfg = _load(tmp_path, """http {
      upstream users { server 127.0.0.1:8001 weight=3; server localhost:8002 backup; keepalive 4; }
      server { listen 127.0.0.1:1;
        location /users/ { proxy_pass http://users/; }
        location /direct { proxy_pass http://127.0.0.1:9000; }
        location /later { proxy_pass http://defined_after; }
      }
      upstream defined_after { server 127.0.0.1:7000; }
    }""")
    users = _loc(cfg, "/users/1").proxy_pass
    assert (users.upstream, users.uri, users.host_header) == ("users", "/", "users")
    assert cfg.upstreams["users"].servers[0].weight == 3
    assert cfg.upstreams["users"].servers[1].backup
    assert cfg.upstreams["users"].keepalive == 4
    direct = _loc(cfg, "/direct").proxy_pass
    assert (direct.upstream, direct.uri) == ("127.0.0.1:9000", None)
    assert cfg.upstreams["127.0.0.1:9000"].implicit
    assert _loc(cfg, "/later").proxy_pass.upstream == "defined_after"


def test_include_glob(tmp_path: Path) -> None:
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "b.conf").write_text("server { listen 127.0.0.1:2; server_name b; }")
    (tmp_path / "conf.d" / "a.conf").write_text("server { listen 127.0.0.1:1; server_name a; }")
    cfg = _load(tmp_path, "http { include conf.d/*.conf; include nothing/*.conf; }")
    assert [s.name for s in cfg.servers] == ["a", "b"]


def test_bare_server_file_reads_as_inside_http(tmp_path: Path) -> None:
    cfg = _load(tmp_path, "worker_processes 1;\nupstream u { server 127.0.0.1:9; }\n"
                          "server { listen 127.0.0.1:1; location / { proxy_pass http://u; } }\n")
    assert cfg.worker_processes == 1
    assert len(cfg.servers) == 1 and "u" in cfg.upstreams


def test_claims_referenced_are_collected(tmp_path: Path) -> None:
    cfg = _load(tmp_path, """http {
      map $jwt_claim_role $admin { default 0; }
      server { listen 127.0.0.1:1; location / { proxy_set_header X $jwt_claim_sub; } } }""")
    assert cfg.claims == {"role", "sub"}


def test_zone_key_through_maps_reads_the_token(tmp_path: Path) -> None:
    """A limit key that is a map (or a map of a map, or an auth_jwt_claim_set variable)
    of a claim verifies the token before the key is rendered, as $jwt_claim_* does."""
    cfg = _load(tmp_path, r"""http {
      limit_req_zone $mapped_id zone=mapped:1m rate=1r/s;
      limit_req_zone $outer zone=outer:1m rate=1r/s;
      limit_req_zone $tenant zone=nested:1m rate=1r/s;
      limit_req_zone $by_host zone=host:1m rate=1r/s;
      map $jwt_claim_sub $mapped_id { default $jwt_claim_sub; }
      map $host $outer { example.com $mapped_id; default ""; }
      map $host $by_host { default $host; }
      auth_jwt_claim_set $tenant org tenant;
      server { listen 127.0.0.1:8080; }
    }""")
    assert cfg.zones["mapped"].uses_jwt
    assert cfg.zones["outer"].uses_jwt
    assert cfg.zones["nested"].uses_jwt
    assert not cfg.zones["host"].uses_jwt


def test_types_blocks_of_one_level_add_up(tmp_path: Path) -> None:
    """nginx's ngx_http_core_types adds to the level's table: Discourse's sample puts
    its own block beside ``include mime.types`` (fastgate refused it as duplicate). A
    later extension replaces an earlier one, with nginx's warning; an inner level's
    blocks replace the outer table; a type without extensions adds none."""
    cfg = _load(tmp_path, """http {
  types { text/html html; text/plain txt; application/octet-stream; }
  types { text/csv csv; application/x-text txt; }
  server { listen 127.0.0.1:1; location /in { types { image/png png; } } } }""")
    outer = cfg.servers[0].fallback.settings.types
    assert outer == {"html": "text/html", "txt": "application/x-text", "csv": "text/csv"}
    assert _loc(cfg, "/in").settings.types == {"png": "image/png"}
    assert list(cfg.warnings) == ['[warn] duplicate extension "txt", content type: '
                            '"application/x-text", previous content type: "text/plain" in '
                            f'{tmp_path}/t.conf:3']


def test_error_pages_for_nginxs_own_codes_answer_400(tmp_path: Path) -> None:
    """nginx's own codes (494 headers too large, 495/496 certificate errors, 497 plain
    HTTP to an ssl port) are answered 400 by their page unless it gives a code
    (ngx_http_core_error_page); the other codes of the same directive keep theirs."""
    cfg = _load(tmp_path, """http { server { listen 127.0.0.1:1;
  error_page 404 494 497 /page; error_page 495 =431 /a; error_page 496 = /b; } }""")
    s = cfg.servers[0].fallback.settings
    assert [(code, s.error_page_for(code).code) for code in (404, 494, 497, 495)] == \
        [(404, None), (494, 400), (497, 400), (495, 431)]
    assert s.error_page_for(496).code is None and s.error_page_for(496).keep_target_status


def test_types_directives_add_up_and_warn_as_nginx(tmp_path: Path) -> None:
    """nginx's ngx_http_types_slot: each ``*_types`` line at a level adds to its list
    (fastgate refused the second as a duplicate), the module's first default type is
    always in it, and a type given again is warned about; ``*`` ends the list."""
    cfg = _load(tmp_path, """http {
  gzip_types text/css; gzip_types application/json TEXT/CSS text/html;
  charset_types text/plain; xslt_types text/xml application/xml;
  sub_filter_types * text/x; sub_filter_types text/y;
  server { listen 127.0.0.1:1; location /in { gzip_types image/svg+xml; } } }""")
    s = cfg.servers[0].fallback.settings
    assert s.gzip_types == ("text/css", "application/json")
    assert s.charset_types == ("text/html", "text/plain")
    assert s.xslt_types == ("text/xml", "application/xml")
    assert s.sub_filter_types == ("*",)
    assert _loc(cfg, "/in").settings.gzip_types == ("image/svg+xml",)  # (replaced)
    assert list(cfg.warnings) == [f'[warn] duplicate MIME type "{t}" in {tmp_path}/t.conf:{n}'
                                  for t, n in (("text/css", 2), ("text/html", 2),
                                               ("text/xml", 3))]


def test_bitmask_directives_and_index_add_up_as_nginx(tmp_path: Path) -> None:
    """Directives nginx reads with its bitmask slot add every line's words at a level
    (a word again: its "duplicate value" warning), and ``index`` lines add their
    names; fastgate refused the second line as a duplicate. (nginx 1.22 -t prints the
    same two warnings for this configuration.)"""
    cfg = _load(tmp_path, """http { gzip_proxied expired; gzip_proxied no-cache expired;
  server { listen 127.0.0.1:1; ssl_protocols TLSv1.2; ssl_protocols TLSv1.3;
    location / { index a.html; index b.html /c.html; proxy_next_upstream error;
      proxy_next_upstream timeout error; proxy_ignore_headers Expires;
      proxy_ignore_headers X-Accel-Redirect; proxy_pass http://127.0.0.1:9; } } }""")
    s = _loc(cfg, "/").settings
    assert s.gzip_proxied == frozenset({"expired", "no-cache"})
    assert s.proxy_next_upstream == ("error", "timeout")
    assert s.proxy_ignore_headers == frozenset({"expires", "x-accel-redirect"})
    assert [t.render(None) for t in s.index] == ["a.html", "b.html", "/c.html"]
    assert cfg.servers[0].fallback.settings.ssl_protocols == ("TLSv1.2", "TLSv1.3")
    assert list(cfg.warnings) == [f'[warn] duplicate value "{w}" in {tmp_path}/t.conf:1'
                                  for w in ("expired",)] + \
        [f'[warn] duplicate value "error" in {tmp_path}/t.conf:4']


def test_stub_status_twice_is_stub_status(tmp_path: Path) -> None:
    """nginx sets stub_status's handler again (its own "on" form too); another content
    handler of fastgate's own beside it is still refused."""
    cfg = _load(tmp_path, """http { server { listen 127.0.0.1:1;
  location /s { stub_status; stub_status on; } } }""")
    assert _loc(cfg, "/s").own_content == "stub"
