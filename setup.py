"""Maps the top-level folders agents/ and leaderboards/ into the gymgen namespace.

Every sub-package is discovered, so adding a folder with an __init__.py needs no edit here.
"""

from setuptools import find_packages, setup

ROOTS = {"gymgen": "gymgen", "gymgen.agents": "agents", "gymgen.leaderboards": "leaderboards"}

packages: list[str] = []
package_dir: dict[str, str] = {}
for name, folder in ROOTS.items():
    packages.append(name)
    package_dir[name] = folder
    for sub in find_packages(folder):
        packages.append(f"{name}.{sub}")
        package_dir[f"{name}.{sub}"] = f"{folder}/{sub.replace('.', '/')}"
# gymgen.agents lives inside the gymgen namespace but not inside the gymgen/ folder; drop any
# accidental rediscovery of gymgen/agents or gymgen/leaderboards folders.
setup(packages=sorted(set(packages)), package_dir=package_dir)
