"""A sphinx-gallery image scraper for the .png files an example writes."""

import glob
import os
import shutil


class PNGScraper:
    """Show the .png files an example writes (``dpsgd.plotting`` draws into files, not pyplot).

    Each new ``*.png`` in the example's folder is moved into the gallery's images, so the
    source tree stays clean.
    """

    def __repr__(self):
        return "PNGScraper"

    def __call__(self, block, block_vars, gallery_conf):
        from sphinx_gallery.scrapers import figure_rst

        folder = os.path.dirname(block_vars["src_file"])
        names = []
        for png in sorted(glob.glob(os.path.join(folder, "*.png"))):
            target = block_vars["image_path_iterator"].next()
            shutil.move(png, target)
            names.append(target)
        return figure_rst(names, gallery_conf["src_dir"])
