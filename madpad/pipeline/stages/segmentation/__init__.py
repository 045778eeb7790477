"""Stage functions of ``pipelines/segmentation_study.yaml``: what does replacing the background
of enrolment photos do to face recognition, image quality and morphing attack detection?

One module per stage (each ``fn(ctx)``, see the stage contract in ``docs/CONTRACTS.md``):

1. :func:`.images.select_images` - one *reference* (enrolment) and one *probe* image per
   subject (FRLL: neutral and smiling), optionally resized, ``images.csv``.
2. :func:`.faces.detect_faces` - face box + 68 landmarks of every original image (per item).
3. :func:`.segment.segment` - every image with every segmenter (per item): matte PNG + image
   with the background replaced (white by default).
4. :func:`.morphs.make_morphs` - landmark morphs (``madpad.morph``) of same-gender subject
   pairs, from the original reference images: the attack set.
5. :func:`.embed.embed` - face embeddings of originals, segmented images and morphs for each
   FR model.
6. :func:`.recognition.recognition_effect` - FNMR at FMR 0.1 % / 1 %, EER, genuine and
   impostor score shifts, for the conditions original-vs-original, segmented-vs-original,
   segmented-vs-segmented.
7. :func:`.quality.quality_effect` - ISO/IEC 29794-5-style measures (``madpad.quality``) per
   image.
8. :func:`.detection.detection_effect` - D-MAD thresholds fixed at APCER 20/10/1 % on original
   images, BPCER measured on segmented bona fide images.
9. :func:`.report.report` - one self-contained HTML report.

:mod:`.common` holds what several stages share (image keys, the tables and embeddings files).
Conventions: FR scores are cosine similarities (higher = same person; match when
``score >= t``). MAD scores: higher = more likely attack; attack when ``score >= t``.

This package imports none of its modules, so the stage cache key of each stage (the runner's
``code_hash``) covers only the modules that stage uses.
"""
