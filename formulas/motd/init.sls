{%- from "motd/map.jinja" import motd with context %}
{%- set banner = motd.get('banner', 'Managed by brine') %}

motd-file:
  file.managed:
    - name: {{ motd.path }}
    - mode: '0644'
    - contents: |
        {{ banner }}
        host: {{ grains['host'] }} ({{ grains['os'] }} {{ grains['osrelease'] }})
        cpus: {{ grains['num_cpus'] }}, memory: {{ grains['mem_total'] }} MiB

{%- if motd.packages %}

motd-packages:
  pkg.installed:
    - pkgs: {{ motd.packages | json }}
    - require_in:
      - file: motd-file
{%- endif %}
