"""The local AWS: the data path on moto (``simulate``), the stack deployed on moto's server
(``deploy_local``, ``emulator``, ``terraform_local``, ``moto_gaps``), what makes moto fast enough
(``moto_speedups``) and the check of every call against the functions' roles (``iam_check``)."""
